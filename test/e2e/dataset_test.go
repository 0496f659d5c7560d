package e2e

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// entry is one key of the test dataset and what it must hold.
type entry struct {
	db   int
	key  string
	kind string // string, hash, list, set or zset (Redis' TYPE)

	str  string             // string
	hash map[string]string  // hash
	list []string           // list (in order) or set members
	zset map[string]float64 // zset
	ttl  time.Duration      // 0: no expiry
}

// keyTTL is far in the future: the key must survive with its TTL.
const keyTTL = 10 * 24 * time.Hour

// testDataset returns keys of every common type, with binary, unicode and
// empty values and key names, a key with a TTL, keys in another database
// and enough plain keys to need several MIGRATE batches.
func testDataset() []entry {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	// A larger value (compressed in the RDB file) mixing text and binary.
	rng := rand.New(rand.NewPCG(1, 2))
	large := make([]byte, 128*1024)
	for i := range large {
		if i%3 == 0 {
			large[i] = byte(rng.IntN(256))
		} else {
			large[i] = "redis backup "[i%13]
		}
	}
	data := []entry{
		{key: "str:plain", kind: "string", str: "hello world"},
		{key: "str:unicode", kind: "string", str: "héllo wörld ✓ 日本語 🚀"},
		{key: "str:binary", kind: "string", str: string(allBytes)},
		{key: "str:empty", kind: "string", str: ""},
		{key: "str:large", kind: "string", str: string(large)},
		{key: "str:integer", kind: "string", str: "-9223372036854775808"},
		{key: `key with spaces, "quotes" and \backslash`, kind: "string", str: "odd key name"},
		{key: "ключ:ünïcode:名前", kind: "string", str: "unicode key name"},
		{key: "bin:\x00\xff\r\nkey", kind: "string", str: "binary key name"},
		{key: "ttl:session", kind: "string", str: "expires in ten days", ttl: keyTTL},
		{key: "hash:user:1000", kind: "hash", hash: map[string]string{
			"name": "Ada Lovelace", "emoji": "🚀", "bin": "\x00\x01\xfe\xff", "empty": "", "n": "42",
		}},
		{key: "list:queue", kind: "list", list: []string{"first", "second", "3", "", "ünï", "\x00", "first"}},
		{key: "set:tags", kind: "set", list: []string{"red", "green", "blue", "日本", "\xff\xfe"}},
		{key: "zset:scores", kind: "zset", zset: map[string]float64{"alice": 1.5, "bob": -2, "carol": 1e10, "dave": 0}},
		{db: 2, key: "db2:note", kind: "string", str: "in database 2"},
		{db: 2, key: "db2:hash", kind: "hash", hash: map[string]string{"k": "v"}},
	}
	for i := range 250 {
		value := make([]byte, rng.IntN(64))
		for j := range value {
			value[j] = byte(rng.IntN(256))
		}
		data = append(data, entry{key: fmt.Sprintf("bulk:%03d", i), kind: "string", str: string(value)})
	}
	return data
}

// writeDataset writes the dataset through redis-cli, one quoted command
// per line on stdin.
func writeDataset(t *testing.T, g Gomega, srv *redisServer, data []entry) {
	t.Helper()
	var cmds strings.Builder
	commands := 0
	line := func(args ...string) {
		for i, a := range args {
			if i > 0 {
				cmds.WriteByte(' ')
			}
			cmds.WriteString(cliQuote(a))
		}
		cmds.WriteByte('\n')
		commands++
	}
	db := -1
	for _, e := range sortedByDB(data) {
		if e.db != db {
			db = e.db
			line("SELECT", strconv.Itoa(db))
		}
		switch e.kind {
		case "string":
			if e.ttl > 0 {
				line("SET", e.key, e.str, "PX", strconv.FormatInt(e.ttl.Milliseconds(), 10))
			} else {
				line("SET", e.key, e.str)
			}
		case "hash":
			args := []string{"HSET", e.key}
			for _, f := range sortedKeys(e.hash) {
				args = append(args, f, e.hash[f])
			}
			line(args...)
		case "list":
			line(append([]string{"RPUSH", e.key}, e.list...)...)
		case "set":
			line(append([]string{"SADD", e.key}, e.list...)...)
		case "zset":
			args := []string{"ZADD", e.key}
			for _, m := range sortedKeys(e.zset) {
				args = append(args, strconv.FormatFloat(e.zset[m], 'g', -1, 64), m)
			}
			line(args...)
		default:
			t.Fatalf("unknown kind %q", e.kind)
		}
	}
	out, err := srv.cli(strings.NewReader(cmds.String()))
	g.Expect(err).NotTo(HaveOccurred(), "redis-cli: %s", out)
	replies := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	g.Expect(replies).To(HaveLen(commands), "one reply per command")
	for _, r := range replies {
		g.Expect(r).To(Or(Equal("OK"), MatchRegexp(`^[0-9]+$`)), "unexpected reply from redis-cli")
	}
}

// verifyDataset checks that the server holds exactly the dataset: every
// database's key count, and every key's type, value and TTL.
func verifyDataset(t *testing.T, g Gomega, srv *redisServer, data []entry) {
	t.Helper()
	c := srv.conn(t)
	do := func(args ...string) any {
		reply, err := c.do(args...)
		g.ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s", args[0])
		return reply
	}
	perDB := map[int]int{}
	for _, e := range data {
		perDB[e.db]++
	}
	for db := range 16 {
		do("SELECT", strconv.Itoa(db))
		g.Expect(do("DBSIZE")).To(BeEquivalentTo(perDB[db]), "number of keys in database %d", db)
	}
	for _, e := range data {
		do("SELECT", strconv.Itoa(e.db))
		name := fmt.Sprintf("db %d key %q", e.db, e.key)
		g.Expect(do("TYPE", e.key)).To(Equal(e.kind), "type of %s", name)
		switch e.kind {
		case "string":
			g.Expect(do("GET", e.key)).To(Equal([]byte(e.str)), "value of %s", name)
		case "hash":
			g.Expect(pairs(do("HGETALL", e.key))).To(Equal(e.hash), "fields of %s", name)
		case "list":
			g.Expect(strs(do("LRANGE", e.key, "0", "-1"))).To(Equal(e.list), "elements of %s", name)
		case "set":
			g.Expect(strs(do("SMEMBERS", e.key))).To(ConsistOf(e.list), "members of %s", name)
		case "zset":
			scores := map[string]float64{}
			for m, s := range pairs(do("ZRANGE", e.key, "0", "-1", "WITHSCORES")) {
				f, err := strconv.ParseFloat(s, 64)
				g.Expect(err).NotTo(HaveOccurred())
				scores[m] = f
			}
			g.Expect(scores).To(Equal(e.zset), "members of %s", name)
		}
		pttl := do("PTTL", e.key)
		if e.ttl == 0 {
			g.Expect(pttl).To(BeEquivalentTo(-1), "%s must not expire", name)
		} else {
			// Counting down since it was written, minutes ago at most.
			g.Expect(pttl).To(And(
				BeNumerically("<=", e.ttl.Milliseconds()),
				BeNumerically(">", (e.ttl-time.Hour).Milliseconds())), "TTL of %s", name)
		}
	}
}

func strs(reply any) []string {
	items, _ := reply.([]any)
	out := make([]string, 0, len(items))
	for _, item := range items {
		b, _ := item.([]byte)
		out = append(out, string(b))
	}
	return out
}

func pairs(reply any) map[string]string {
	items := strs(reply)
	out := map[string]string{}
	for i := 0; i+1 < len(items); i += 2 {
		out[items[i]] = items[i+1]
	}
	return out
}

func sortedByDB(data []entry) []entry {
	out := append([]entry(nil), data...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].db < out[j].db })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
