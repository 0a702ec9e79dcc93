package fuzz

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zmqtt/zmqtt-go/codec"
	"github.com/zmqtt/zmqtt-go/fuzz/gen"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz")

// corpusEntry is one file of a seed corpus: its name and its values, in the
// order of the target's arguments.
type corpusEntry struct {
	target, name string
	values       []any
}

// encodeEntry writes the values in the "go test fuzz v1" format.
func encodeEntry(values []any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case byte:
			fmt.Fprintf(&b, "byte(%s)\n", strconv.QuoteRune(rune(v)))
		case uint32:
			fmt.Fprintf(&b, "uint32(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", v)
		default:
			panic(fmt.Sprintf("corpus value of type %T", v))
		}
	}
	return b.Bytes()
}

// mosqVector is one byte sequence of Mosquitto's test vectors
// (testdata/mosquitto): what a broker (broker/) or a client (lib/) receives
// or sends.
type mosqVector struct {
	name     string // file, case number and step
	ver      codec.Version
	toClient bool // the bytes travel from server to client
	b        []byte
}

func loadMosqVectors(t *testing.T) []mosqVector {
	t.Helper()
	type msg struct{ Type, Payload string }
	type test struct {
		Name string
		Ver  *int
		Msgs []msg
	}
	type group struct {
		Ver       *int
		GroupMsgs []msg `json:"group_msgs"`
		Tests     []test
	}
	var out []mosqVector
	for _, dir := range []string{"broker", "lib"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", "mosquitto", dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Mosquitto vectors in testdata/mosquitto/%s: %v", dir, err)
		}
		slices.Sort(files)
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var groups []group
			if err := json.Unmarshal(data, &groups); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			base := dir + "-" + strings.TrimSuffix(filepath.Base(path), ".json")
			k := 0
			for _, g := range groups {
				for _, tc := range g.Tests {
					ver := 4
					if g.Ver != nil {
						ver = *g.Ver
					}
					if tc.Ver != nil {
						ver = *tc.Ver
					}
					for i, m := range slices.Concat(g.GroupMsgs, tc.Msgs) {
						if m.Type != "send" && m.Type != "recv" {
							continue
						}
						b, err := hex.DecodeString(strings.Join(strings.Fields(m.Payload), ""))
						if err != nil {
							t.Fatalf("%s %q: %v", path, tc.Name, err)
						}
						// broker/: "send" reaches the broker; lib/: "send" reaches the client.
						toClient := (dir == "lib") == (m.Type == "send")
						out = append(out, mosqVector{fmt.Sprintf("%s-%03d-%d", base, k, i), codec.Version(ver), toClient, b})
					}
					k++
				}
			}
		}
	}
	return out
}

// corpus builds the committed seed corpus: every golden packet and every
// Mosquitto vector for FuzzDecode and for the per-type target of its type,
// the server-to-client vectors for FuzzSessionInput, and deterministic
// random bytes for the generator-driven targets.
func corpus(t *testing.T) []corpusEntry {
	var out []corpusEntry
	seen := map[string]bool{} // target and encoding: the vectors repeat CONNECTs and acks
	put := func(e corpusEntry) {
		k := e.target + "\x00" + string(encodeEntry(e.values))
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	perType := func(typ codec.Type) string {
		switch typ {
		case codec.TypeConnect:
			return "FuzzConnect"
		case codec.TypeConnack:
			return "FuzzConnack"
		case codec.TypePublish:
			return "FuzzPublish"
		case codec.TypePuback, codec.TypePubrec, codec.TypePubrel, codec.TypePubcomp:
			return "FuzzPubAcks"
		case codec.TypeSubscribe:
			return "FuzzSubscribe"
		case codec.TypeSuback, codec.TypeUnsuback:
			return "FuzzSubAcks"
		case codec.TypeUnsubscribe:
			return "FuzzUnsubscribe"
		}
		return "FuzzControl"
	}
	add := func(name string, v codec.Version, toClient bool, b []byte) {
		put(corpusEntry{"FuzzDecode", name, []any{b}})
		if len(b) > 0 && b[0]>>4 != 0 {
			put(corpusEntry{perType(codec.Type(b[0] >> 4)), name, []any{byte(v), b}})
		}
		if toClient && v.Valid() {
			mode := byte(0)
			if v == codec.V5 {
				mode = 1
			}
			put(corpusEntry{"FuzzSessionInput", name, []any{mode, byte(200), b}})
		}
	}
	for _, v := range []codec.Version{codec.V311, codec.V5} {
		seeds := goldenSeeds(&testing.F{}, v)
		types := make([]codec.Type, 0, len(seeds))
		for typ := range seeds {
			types = append(types, typ)
		}
		slices.Sort(types)
		for _, typ := range types {
			for i, b := range seeds[typ] {
				add(fmt.Sprintf("golden-v%d-%s-%d", v, strings.ToLower(typ.String()), i), v, true, b)
			}
		}
	}
	for _, m := range loadMosqVectors(t) {
		add("mosquitto-"+m.name, m.ver, m.toClient, m.b)
	}
	rnd := rand.New(rand.NewPCG(2026, 12))
	for _, target := range []string{"FuzzGenerated", "FuzzGeneratedSession", "FuzzEncode"} {
		for i := range 240 {
			b := make([]byte, 16+rnd.IntN(112))
			for j := range b {
				b[j] = byte(rnd.Uint32())
			}
			out = append(out, corpusEntry{target, fmt.Sprintf("gen-%03d", i), []any{b}})
		}
	}
	// FuzzEncode: each kind of corruption on each packet type of each
	// version; its first six bytes name them (see FuzzEncode).
	for vi, v := range []codec.Version{codec.V311, codec.V5} {
		n := len(gen.Types(v))
		for k := range 7 {
			for ti := range n {
				b := []byte{byte(k), byte((ti*5 + k) % 12), byte((ti + 3*k) % len(badStrings)), byte(rnd.Uint32()), byte(vi), byte(ti)}
				for range 24 {
					b = append(b, byte(rnd.Uint32()))
				}
				name := fmt.Sprintf("enc-v%d-k%d-%s", v, k, strings.ToLower(gen.Types(v)[ti].String()))
				out = append(out, corpusEntry{"FuzzEncode", name, []any{b}})
			}
		}
	}
	return out
}

// TestSeedCorpus checks that testdata/fuzz holds exactly the corpus the
// sources above make (run with -update-corpus to rewrite it), so the
// committed seeds never drift from the golden packets and vectors.
func TestSeedCorpus(t *testing.T) {
	entries := corpus(t)
	want := map[string][]byte{}
	for _, e := range entries {
		path := filepath.Join("testdata", "fuzz", e.target, e.name)
		want[path] = encodeEntry(e.values)
	}
	if *updateCorpus {
		if err := os.RemoveAll(filepath.Join("testdata", "fuzz")); err != nil {
			t.Fatal(err)
		}
		for path, b := range want {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have := 0
	err := filepath.WalkDir(filepath.Join("testdata", "fuzz"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w, ok := want[path]
		switch {
		case !ok && (strings.HasPrefix(d.Name(), "gen-") || strings.HasPrefix(d.Name(), "enc-") ||
			strings.HasPrefix(d.Name(), "golden-") || strings.HasPrefix(d.Name(), "mosquitto-")):
			t.Errorf("%s is not in the corpus any more (run go test -run TestSeedCorpus ./fuzz -args -update-corpus)", path)
		case !ok:
			// a crasher kept by the fuzzer: replayed, not generated
		case !bytes.Equal(b, w):
			t.Errorf("%s differs from its source (run go test -run TestSeedCorpus ./fuzz -args -update-corpus)", path)
		default:
			have++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if have != len(want) {
		t.Errorf("testdata/fuzz holds %d of the %d corpus files (run go test -run TestSeedCorpus ./fuzz -args -update-corpus)", have, len(want))
	}
}
