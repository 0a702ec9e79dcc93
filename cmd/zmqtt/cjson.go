package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
)

// JSON as mosquitto_sub writes it for -F %j and %J: with cJSON, whose
// output a script may compare byte for byte. cJSON keeps an object's keys
// in order, repeats included; escapes only ", \ and the control characters
// (\b \f \n \r \t by name, the others as \u00xx); writes other bytes as
// they are; writes a number with 15 significant digits, or 17 when 15 do
// not give the same double back; and, formatted (--pretty), indents with
// tabs, puts a tab after each colon and keeps arrays on one line.

// jnode is a JSON value: an object ('o'), an array ('a'), a string ('s'),
// a number ('n', its text) or a literal true, false or null ('l').
type jnode struct {
	kind  byte
	text  []byte
	keys  []string
	items []*jnode
}

func jstr(s string) *jnode { return &jnode{kind: 's', text: []byte(s)} }

func jint(v uint64) *jnode { return &jnode{kind: 'n', text: strconv.AppendUint(nil, v, 10)} }

// add appends a member to an object; a key may repeat.
func (n *jnode) add(key string, v *jnode) {
	n.keys = append(n.keys, key)
	n.items = append(n.items, v)
}

// write appends n, compact or formatted as cJSON_Print formats; depth is
// the nesting depth of n.
func (n *jnode) write(b *bytes.Buffer, pretty bool, depth int) {
	switch n.kind {
	case 's':
		writeJSONString(b, n.text)
	case 'n', 'l':
		b.Write(n.text)
	case 'a':
		b.WriteByte('[')
		for i, it := range n.items {
			if i > 0 {
				b.WriteByte(',')
				if pretty {
					b.WriteByte(' ')
				}
			}
			it.write(b, pretty, depth+1)
		}
		b.WriteByte(']')
	case 'o':
		b.WriteByte('{')
		if pretty {
			b.WriteByte('\n')
		}
		for i, it := range n.items {
			if pretty {
				blank(b, '\t', depth+1)
			}
			writeJSONString(b, []byte(n.keys[i]))
			b.WriteByte(':')
			if pretty {
				b.WriteByte('\t')
			}
			it.write(b, pretty, depth+1)
			if i < len(n.items)-1 {
				b.WriteByte(',')
			}
			if pretty {
				b.WriteByte('\n')
			}
		}
		if pretty {
			blank(b, '\t', depth)
		}
		b.WriteByte('}')
	}
}

// writeJSONString appends s quoted and escaped as cJSON escapes.
func writeJSONString(b *bytes.Buffer, s []byte) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// cjsonNumber formats a number as cJSON does: null for infinities (a
// number too large for a double), 15 significant digits when they give the
// same double back within a relative DBL_EPSILON, else 17.
func cjsonNumber(f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return []byte("null")
	}
	s := strconv.AppendFloat(nil, f, 'g', 15, 64)
	back, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.Abs(back-f) > math.Max(math.Abs(back), math.Abs(f))*0x1p-52 {
		s = strconv.AppendFloat(nil, f, 'g', 17, 64)
	}
	return s
}

// parseJSON parses a payload that must be one JSON value, whitespace
// around it allowed, and returns it for rewriting.
func parseJSON(p []byte) (*jnode, bool) {
	if !json.Valid(p) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	n, err := parseValue(d)
	if err != nil {
		return nil, false
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return n, true
}

func parseValue(d *json.Decoder) (*jnode, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch v := t.(type) {
	case json.Delim:
		n := &jnode{kind: 'a'}
		if v == '{' {
			n.kind = 'o'
		}
		for d.More() {
			if n.kind == 'o' {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			it, err := parseValue(d)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, it)
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &jnode{kind: 's', text: []byte(v)}, nil
	case json.Number:
		f, _ := strconv.ParseFloat(string(v), 64) // out of range: ±Inf, written null
		return &jnode{kind: 'n', text: cjsonNumber(f)}, nil
	case bool:
		return &jnode{kind: 'l', text: []byte(strconv.FormatBool(v))}, nil
	default: // nil
		return &jnode{kind: 'l', text: []byte("null")}, nil
	}
}
