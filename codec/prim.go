package codec

import (
	"encoding/binary"
	"unicode/utf8"
	"unsafe"
)

// This file holds the data representations of section 1.5: integers,
// Variable Byte Integers, UTF-8 strings and binary data. Readers take the
// packet buffer and an offset and return the new offset; they report failure
// with ok == false and leave the error to the caller, which knows the packet
// type and the rule.

// vbiLen returns the number of bytes the Variable Byte Integer encoding of n
// takes. n must be in [0, MaxRemainingLength].
func vbiLen(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	}
	return 4
}

// appendVBI appends the Variable Byte Integer encoding of n [§1.5.5].
func appendVBI(dst []byte, n int) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// Results of readVBI besides success.
const (
	vbiOK         = 0
	vbiIncomplete = 1 // the input ended inside the integer
	vbiTooLong    = 2 // a fifth byte would be needed
	vbiNotMinimal = 3 // encoded in more bytes than needed [MQTT-1.5.5-1]
)

// readVBI decodes a Variable Byte Integer at b[off:], reading no further than
// end. It returns the value, the offset after it and one of the vbi* results.
func readVBI(b []byte, off, end int) (val, next, res int) {
	var shift uint
	for i := 0; i < 4; i++ {
		if off >= end {
			return 0, off, vbiIncomplete
		}
		c := b[off]
		off++
		val |= int(c&0x7F) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, off, vbiNotMinimal
			}
			return val, off, vbiOK
		}
		shift += 7
	}
	return 0, off, vbiTooLong
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)>>8), byte(len(s)))
	return append(dst, s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	dst = append(dst, byte(len(b)>>8), byte(len(b)))
	return append(dst, b...)
}

// readUint16 reads a Two Byte Integer.
func readUint16(b []byte, off, end int) (uint16, int, bool) {
	if end-off < 2 {
		return 0, off, false
	}
	return uint16(b[off])<<8 | uint16(b[off+1]), off + 2, true
}

// readBytes reads a two-byte length and that many bytes. The result aliases b.
func readBytes(b []byte, off, end int) ([]byte, int, bool) {
	if end-off < 2 {
		return nil, off, false
	}
	n := int(b[off])<<8 | int(b[off+1])
	off += 2
	if end-off < n {
		return nil, off, false
	}
	return b[off : off+n : off+n], off + n, true
}

// bstr returns a string that shares memory with b: no copy, no allocation.
// Decoded packets use it for their strings, which stay valid only while the
// decoded buffer is not modified (see the package documentation).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Word-at-a-time scanning: the checks below look at eight bytes at once and
// fall back to a byte loop only when a word holds something of interest.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// plainASCII reports whether b is made only of ASCII bytes other than
// U+0000 (and, when wild is set, other than '+' and '#'): the common case,
// checked a word at a time. Strings of eight bytes or more end with one
// overlapping word instead of a byte loop. A false answer means "look
// closer", not "invalid".
//
// Per word x: a byte is 0x80 or above when its high bit is set; a byte is
// zero when (x - 0x01..) &^ x has its high bit set (exact as an "any" test);
// '+' (0x2B) and '#' (0x23) differ only in bit 3, so (x | 0x08..) ^ 0x2B..
// has a zero byte exactly where x has either wildcard.
func plain(b []byte, wild bool) bool {
	n := len(b)
	if n < 8 {
		for _, c := range b {
			if c == 0 || c >= 0x80 || wild && c|0x08 == '+' {
				return false
			}
		}
		return true
	}
	const bit3, plus = 0x0808080808080808, '+' * lo8
	var acc uint64
	last := binary.LittleEndian.Uint64(b[n-8:])
	if wild {
		for ; len(b) >= 8; b = b[8:] {
			x := binary.LittleEndian.Uint64(b)
			y := (x | bit3) ^ plus
			acc |= x | (x-lo8)&^x | (y-lo8)&^y
		}
		y := (last | bit3) ^ plus
		acc |= last | (last-lo8)&^last | (y-lo8)&^y
	} else {
		for ; len(b) >= 8; b = b[8:] {
			x := binary.LittleEndian.Uint64(b)
			acc |= x | (x-lo8)&^x
		}
		acc |= last | (last-lo8)&^last
	}
	return acc&hi8 == 0
}

// validUTF8 reports whether b is a well-formed UTF-8 string without U+0000,
// as every UTF-8 Encoded String must be [MQTT-1.5.4-1] [MQTT-1.5.4-2].
// Surrogate code points are ill-formed in UTF-8 and are refused too.
func validUTF8(b []byte) bool {
	return plain(b, false) || validUTF8Slow(b)
}

func validUTF8Slow(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return true
}

// validUTF8String is validUTF8 for a string.
func validUTF8String(s string) bool {
	return validUTF8(unsafe.Slice(unsafe.StringData(s), len(s)))
}
