package secrettemplate

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
)

// allowed are the sprig functions templates may call as sprig defines them.
// Each computes from its arguments alone, and its result is at most a few
// times the size of its arguments (the wrapper bounds both). Left out on
// purpose: env, expandenv (the operator's environment), getHostByName (the
// network); now, ago, date functions that fall back to the clock,
// durationRound, the rand* functions, shuffle, uuidv4, bcrypt, htpasswd,
// derivePassword, encryptAES, the gen* certificate functions (random or
// clock-dependent, so a link would not render to the same Secret twice, and
// some costly); until, untilStep, seq, wrapWith, chunk, toPrettyJson (output
// far larger than their input); set, unset, merge* (they mutate); semver
// and type reflection (no use here).
var allowed = []string{
	// Strings.
	"abbrev", "abbrevboth", "trunc", "trim", "trimAll", "trimall", "trimPrefix", "trimSuffix",
	"upper", "lower", "title", "untitle", "substr", "nospace", "initials", "swapcase",
	"snakecase", "camelcase", "kebabcase", "wrap", "contains", "hasPrefix", "hasSuffix",
	"quote", "squote", "cat", "plural", "toString", "toStrings", "split", "splitList", "splitn", "sortAlpha",
	// Digests and encodings.
	"sha1sum", "sha256sum", "sha512sum", "adler32sum", "b64enc", "b64dec", "b32enc", "b32dec",
	"toJson", "mustToJson", "toRawJson", "mustToRawJson", "fromJson", "mustFromJson",
	// Numbers.
	"atoi", "int", "int64", "float64", "add", "add1", "sub", "mul", "div", "mod",
	"max", "min", "biggest", "addf", "add1f", "subf", "mulf", "divf", "maxf", "minf", "ceil", "floor", "round",
	// Defaults and logic.
	"default", "empty", "coalesce", "all", "any", "ternary", "fail",
	// Paths (string functions; no file is read).
	"base", "dir", "clean", "ext", "isAbs",
	// Lists and dictionaries.
	"list", "tuple", "first", "mustFirst", "rest", "mustRest", "last", "mustLast", "initial", "mustInitial",
	"append", "mustAppend", "prepend", "mustPrepend", "concat", "has", "mustHas", "without", "mustWithout",
	"uniq", "mustUniq", "compact", "mustCompact", "reverse", "mustReverse", "slice", "mustSlice",
	"dict", "get", "hasKey", "keys", "values", "pick", "omit", "pluck", "dig",
	// Times given as arguments.
	"unixEpoch", "duration",
	// Regular expressions (RE2: linear time).
	"regexMatch", "mustRegexMatch", "regexFind", "mustRegexFind", "regexFindAll", "mustRegexFindAll",
	"regexSplit", "mustRegexSplit", "regexQuoteMeta",
	// URLs.
	"urlParse", "urlJoin",
}

// funcs is what templates can call: the allowed sprig functions and
// replacements for the ones whose output can outgrow their input, and for
// text/template's own print functions and escapers, all bounded.
var funcs = buildFuncs()

func buildFuncs() template.FuncMap {
	library := sprig.TxtFuncMap()
	fm := template.FuncMap{}
	for _, name := range allowed {
		fn, ok := library[name]
		if !ok {
			panic("secrettemplate: sprig has no function " + name)
		}
		fm[name] = bounded(name, fn)
	}
	toStrings := library["toStrings"].(func(any) []string)
	for name, fn := range map[string]any{
		"repeat":                 repeat,
		"indent":                 indent,
		"nindent":                func(spaces int, s string) (string, error) { out, err := indent(spaces, s); return "\n" + out, err },
		"replace":                replace,
		"join":                   func(sep string, v any) (string, error) { return join(sep, toStrings(v)) },
		"regexReplaceAll":        func(re, s, repl string) (string, error) { return regexReplace(re, s, repl, false) },
		"regexReplaceAllLiteral": func(re, s, repl string) (string, error) { return regexReplace(re, s, repl, true) },
		"date":                   func(layout string, t any) (string, error) { return formatDate(layout, t, "UTC") },
		"dateInZone":             formatDate,
		"toDate":                 func(layout, value string) time.Time { t, _ := parseUTC(layout, value); return t },
		"mustToDate":             parseUTC,
		"printf":                 printf,
		"print":                  fmt.Sprint,
		"println":                fmt.Sprintln,
		"html":                   template.HTMLEscaper,
		"js":                     template.JSEscaper,
		"urlquery":               template.URLQueryEscaper,
	} {
		fm[name] = bounded(name, fn)
	}
	return fm
}

var errTooLarge = fmt.Errorf("a value over %d KiB", maxValue>>10)

// bounded wraps fn so that a call with string arguments (lists and maps
// counted by their elements) over maxValue, or a result over it, fails
// instead of going on.
func bounded(name string, fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	returnsError := t.NumOut() == 2
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		fail := func(err error) []reflect.Value {
			err = fmt.Errorf("%s: %w", name, err)
			if !returnsError {
				// text/template turns a function's panic into an
				// execution error.
				panic(err)
			}
			return []reflect.Value{reflect.Zero(t.Out(0)), reflect.ValueOf(&err).Elem()}
		}
		total := 0
		for _, arg := range args {
			if total += sizeOf(arg, maxValue-total); total > maxValue {
				return fail(errTooLarge)
			}
		}
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if sizeOf(out[0], maxValue) > maxValue {
			return fail(errTooLarge)
		}
		return out
	}).Interface()
}

// sizeOf is the size of v's strings and byte slices, lists and maps counted
// by their elements (each at least 1), stopping once it passes limit.
func sizeOf(v reflect.Value, limit int) int {
	if limit < 0 {
		return 1
	}
	switch v.Kind() {
	case reflect.String:
		return v.Len()
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return sizeOf(v.Elem(), limit)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Len()
		}
		n := 0
		for i := 0; i < v.Len() && n <= limit; i++ {
			n += 1 + sizeOf(v.Index(i), limit-n)
		}
		return n
	case reflect.Map:
		n := 0
		for it := v.MapRange(); it.Next() && n <= limit; {
			n += 1 + sizeOf(it.Key(), limit-n)
			n += sizeOf(it.Value(), limit-n)
		}
		return n
	default:
		return 0
	}
}

func checkSize(n int) error {
	if n < 0 || n > maxValue {
		return errTooLarge
	}
	return nil
}

var errNegative = errors.New("a negative count")

func repeat(count int, s string) (string, error) {
	if count < 0 {
		return "", errNegative
	}
	if count > 0 && len(s) > maxValue/count {
		return "", errTooLarge
	}
	return strings.Repeat(s, count), nil
}

func indent(spaces int, s string) (string, error) {
	lines := strings.Count(s, "\n") + 1
	if spaces < 0 {
		return "", errNegative
	}
	if spaces > 0 && lines > maxValue/spaces {
		return "", errTooLarge
	}
	if err := checkSize(len(s) + spaces*lines); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", spaces)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad), nil
}

// replace is sprig's replace (old, new, src), with its size checked first:
// an empty old inserts new between every character.
func replace(old, replacement, src string) (string, error) {
	if growth := len(replacement) - len(old); growth > 0 {
		if n := strings.Count(src, old); n > 0 && growth > (maxValue-len(src))/n {
			return "", errTooLarge
		}
	}
	return strings.ReplaceAll(src, old, replacement), nil
}

func join(sep string, items []string) (string, error) {
	n := len(sep) * max(len(items)-1, 0)
	if len(items) > 1 && len(sep) > maxValue/(len(items)-1) {
		return "", errTooLarge
	}
	for _, item := range items {
		n += len(item)
	}
	if err := checkSize(n); err != nil {
		return "", err
	}
	return strings.Join(items, sep), nil
}

// regexReplace is sprig's regexReplaceAll(Literal) with its size checked
// first: each match may become the replacement, each $ in it a copy of the
// input at most.
func regexReplace(pattern, s, repl string, literal bool) (string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return "", err
	}
	matches := len(re.FindAllStringIndex(s, -1))
	each := len(repl)
	if !literal {
		each += strings.Count(repl, "$") * len(s)
	}
	if matches > 0 && each > (maxValue-len(s))/matches {
		return "", errTooLarge
	}
	if literal {
		return re.ReplaceAllLiteralString(s, repl), nil
	}
	return re.ReplaceAllString(s, repl), nil
}

// formatDate formats a time given as a time.Time or Unix seconds (such as
// .expiresAtUnix; .expiresAt goes through toDate first). sprig's date
// functions format the current time for anything else, which would make
// the Secret depend on when it was rendered.
func formatDate(layout string, t any, zone string) (string, error) {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return "", errors.New("no time given")
		}
		at = *v
	case int64:
		at = time.Unix(v, 0)
	case int:
		at = time.Unix(int64(v), 0)
	case int32:
		at = time.Unix(int64(v), 0)
	default:
		return "", fmt.Errorf("needs a time or Unix seconds (.expiresAtUnix, or toDate on .expiresAt), not a %T", t)
	}
	if zone == "Local" {
		// The operator's own zone: the Secret would depend on where it runs.
		return "", errors.New(`the zone "Local" is refused: name a zone, such as "UTC" or "Asia/Shanghai"`)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return "", err
	}
	return at.In(loc).Format(layout), nil
}

// parseUTC is sprig's toDate without its dependence on the operator's
// zone: a time without an offset is read as UTC, not as local time.
func parseUTC(layout, value string) (time.Time, error) {
	return time.ParseInLocation(layout, value, time.UTC)
}

// printf is fmt.Sprintf without widths or precisions that would pad a value
// to any size: a number in a verb over 4 digits, or a * (width from an
// argument), is refused.
func printf(format string, args ...any) (string, error) {
	if err := checkVerbs(format); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

// verbSpec matches %% or the flags, argument index, width and precision of
// a verb.
var verbSpec = regexp.MustCompile(`%%|%[-+# 0]*(?:\[\d+\])?(\*|\d*)(?:\.(?:\[\d+\])?(\*|\d*))?`)

func checkVerbs(format string) error {
	for _, m := range verbSpec.FindAllStringSubmatch(format, -1) {
		for _, number := range m[1:] {
			if number == "*" || len(number) > 4 {
				return fmt.Errorf("%w: a width or precision over 9999, or given by *, is not allowed", errTooLarge)
			}
		}
	}
	return nil
}
