// Package argocd runs the Argo CD health check shipped in
// config/argocd/health.lua the way Argo CD runs a custom health check from
// its argocd-cm ConfigMap, so that tests can hold the script's verdicts
// against kstatus on the same objects. Only tests use it: the operator does
// not link it (nor gopher-lua).
package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Argo CD's health statuses.
const (
	Healthy     = "Healthy"
	Progressing = "Progressing"
	Degraded    = "Degraded"
	Suspended   = "Suspended"
	Missing     = "Missing"
	Unknown     = "Unknown"
)

// ConfigMapKey is the argocd-cm key Argo CD reads the health check of
// uredis.dezai.com/RedisBackupExport from.
const ConfigMapKey = "resource.customizations.health.uredis.dezai.com_RedisBackupExport"

// scriptTimeout is how long Argo CD lets a health script run.
const scriptTimeout = time.Second

// Health is a health script's verdict.
type Health struct {
	Status  string
	Message string
}

// ForKstatus is the Argo CD status that agrees with a kstatus status.
func ForKstatus(s status.Status) string {
	switch s {
	case status.CurrentStatus:
		return Healthy
	case status.InProgressStatus, status.TerminatingStatus:
		return Progressing
	case status.FailedStatus:
		return Degraded
	default:
		return Unknown
	}
}

// shippedScriptPath is the path of config/argocd/health.lua in the source
// tree this package was built from.
func shippedScriptPath() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the source tree")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "argocd", "health.lua"), nil
}

// ShippedScript returns the text of config/argocd/health.lua.
func ShippedScript() (string, error) {
	path, err := shippedScriptPath()
	if err != nil {
		return "", err
	}
	text, err := os.ReadFile(path) //nolint:gosec // the repository's own config/argocd/health.lua
	if err != nil {
		return "", err
	}
	return string(text), nil
}

// Run runs a health script on obj as Argo CD does with a check from
// argocd-cm: a fresh Lua state with only the package, base and table
// libraries (no string, math, io or os library, Argo CD's default without
// useOpenLibs), obj as the global table `obj`, one second to finish, and the
// table the script returns read as {status, message}. A status Argo CD does
// not know turns into Unknown, as Argo CD turns it. An error is what Argo CD
// would show as Unknown with the error's text.
//
// Argo CD answers Progressing for an object being deleted without running
// the script; Run always runs it.
func Run(script string, obj *unstructured.Unstructured) (Health, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, fmt.Errorf("opening Lua library %q: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	L.SetContext(ctx)

	value, err := toLua(L, obj.Object)
	if err != nil {
		return Health{}, fmt.Errorf("converting the object: %w", err)
	}
	L.SetGlobal("obj", value)
	if err := L.DoString(script); err != nil {
		return Health{}, err
	}
	returned, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("the script returned a %s, not a table", L.Get(-1).Type())
	}
	var health Health
	for field, into := range map[string]*string{"status": &health.Status, "message": &health.Message} {
		switch v := returned.RawGetString(field).(type) {
		case lua.LString:
			*into = string(v)
		case *lua.LNilType:
		default:
			// Argo CD decodes the table as JSON into string fields.
			return Health{}, fmt.Errorf("the script returned a %s as %s, not a string", v.Type(), field)
		}
	}
	switch health.Status {
	case Healthy, Progressing, Degraded, Suspended, Missing, Unknown:
		return health, nil
	default:
		return Health{Status: Unknown, Message: fmt.Sprintf("the script returned the invalid health status %q", health.Status)}, nil
	}
}

// toLua converts a value of an unstructured object into the Lua value Argo
// CD hands a script: objects become tables with string keys, lists become
// tables indexed from 1, numbers Lua numbers (but a json.Number a string, as
// in Argo CD), and a null field is simply absent.
func toLua(state *lua.LState, v any) (lua.LValue, error) {
	switch v := v.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(v), nil
	case string:
		return lua.LString(v), nil
	case json.Number:
		return lua.LString(v), nil
	case int:
		return lua.LNumber(v), nil
	case int32:
		return lua.LNumber(v), nil
	case int64:
		return lua.LNumber(v), nil
	case float64:
		return lua.LNumber(v), nil
	case []any:
		table := state.CreateTable(len(v), 0)
		for _, item := range v {
			value, err := toLua(state, item)
			if err != nil {
				return nil, err
			}
			table.Append(value)
		}
		return table, nil
	case map[string]any:
		table := state.CreateTable(0, len(v))
		for key, item := range v {
			value, err := toLua(state, item)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			table.RawSetString(key, value)
		}
		return table, nil
	default:
		return nil, fmt.Errorf("unexpected %T", v)
	}
}
