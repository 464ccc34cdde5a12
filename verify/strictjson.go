package verify

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The strict JSON reader. Token headers, token payloads and introspection
// answers are read with the semantics of encoding/json/v2's defaults
// (RFC 8259 with RFC 7493's restrictions), which encoding/json (v1) does not
// have:
//
//   - member names match exactly, byte for byte after unescaping: "AUD" and
//     "ſcope" are other members than "aud" and "scope";
//   - a member name that occurs twice in one object, at any depth, makes the
//     whole document invalid, so no reader can pick another value than the
//     checks did (RFC 7515 section 4 and RFC 7519 section 4 allow refusing);
//   - strings must be valid UTF-8 and escapes must not leave a lone UTF-16
//     surrogate;
//   - exactly one value, optionally surrounded by white space.
//
// encoding/json/v2 itself needs GOEXPERIMENT=jsonv2 in Go 1.26, so this file
// implements those rules; strictjson_v2_test.go checks it against
// encoding/json/v2 when built with that experiment.

// maxJSONDepth is encoding/json/v2's nesting limit.
const maxJSONDepth = 10000

// errDuplicateName is the detail of a document with a duplicate member name.
var errDuplicateName = errors.New("duplicate member name")

// jsonError says where a document is invalid without echoing its bytes.
type jsonError struct {
	offset int
	why    string
}

func (e *jsonError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.offset, e.why)
}

// Is makes a duplicate name match errDuplicateName.
func (e *jsonError) Is(target error) bool {
	return target == errDuplicateName && e.why == errDuplicateName.Error()
}

// smallObject is how many member names one object may have before its
// duplicate check moves from a linear scan to a map.
const smallObject = 32

// nameSpan is where a member name's bytes (between the quotes) are in the
// document, and whether they hold an escape.
type nameSpan struct {
	start, end int32
	escaped    bool
}

// jsonScanner validates one JSON document. The member names of the objects
// being read are a stack in inline, innermost object last; every object
// truncates it back when it closes. (An object whose names do not fit
// keeps them in a map of its own.) Nothing in a scanner points into itself
// or is stored through it, so it and the document stay on the stack.
type jsonScanner struct {
	b      []byte
	i      int
	nNames int
	inline [2 * smallObject]nameSpan
}

func (s *jsonScanner) fail(why string) error { return &jsonError{offset: s.i, why: why} }

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// sameName reports whether two member names are equal after unescaping.
func (s *jsonScanner) sameName(x, y nameSpan) bool {
	a, b := s.b[x.start:x.end], s.b[y.start:y.end]
	if !x.escaped && !y.escaped {
		return bytes.Equal(a, b)
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		var ra, rb rune
		ra, i = nextRune(a, i)
		rb, j = nextRune(b, j)
		if ra != rb {
			return false
		}
	}
	return i == len(a) && j == len(b)
}

// nameKey is a member name as a map key: its unescaped bytes.
func (s *jsonScanner) nameKey(n nameSpan) string {
	raw := s.b[n.start:n.end]
	if !n.escaped {
		return string(raw)
	}
	return string(appendUnescaped(nil, raw))
}

// members is one object's duplicate check: its names are the scanner's
// names from first on, and, once there are many, the keys of big.
type members struct {
	first int
	big   map[string]struct{}
}

// add records name n of the object, refusing a duplicate. An object's
// names are compared linearly while it has few and the scanner's inline
// stack has room; then they move to a map.
func (m *members) add(s *jsonScanner, n nameSpan) error {
	if m.big == nil {
		for k := m.first; k < s.nNames; k++ {
			if s.sameName(s.inline[k], n) {
				return &jsonError{offset: int(n.start) - 1, why: errDuplicateName.Error()}
			}
		}
		if s.nNames-m.first < smallObject && s.nNames < len(s.inline) {
			s.inline[s.nNames] = n
			s.nNames++
			return nil
		}
		m.big = make(map[string]struct{}, 4*smallObject)
		for k := m.first; k < s.nNames; k++ {
			m.big[s.nameKey(s.inline[k])] = struct{}{}
		}
	}
	k := s.nameKey(n)
	if _, dup := m.big[k]; dup {
		return &jsonError{offset: int(n.start) - 1, why: errDuplicateName.Error()}
	}
	m.big[k] = struct{}{}
	return nil
}

// objectIter reads the members of a top-level JSON object one by one.
type objectIter struct {
	s    jsonScanner
	m    members
	done bool
}

// newObjectIter starts reading b, which must be exactly one JSON object.
func newObjectIter(b []byte) (it objectIter, err error) {
	it.s.b = b
	it.s.ws()
	if it.s.i >= len(b) || b[it.s.i] != '{' {
		return it, it.s.fail("not a JSON object")
	}
	it.s.i++
	it.s.ws()
	if it.s.i < len(b) && b[it.s.i] == '}' {
		it.s.i++
		return it, it.end()
	}
	return it, nil
}

// end checks that nothing but white space follows the object.
func (it *objectIter) end() error {
	it.done = true
	it.s.ws()
	if it.s.i != len(it.s.b) {
		return it.s.fail("data after the object")
	}
	return nil
}

// next returns the next member: its raw name (between the quotes, still
// escaped if escaped is true) and its raw value; ok is false after the last
// member, once the whole document has been checked. The value of a member
// has been checked completely (nested duplicates included) when next
// returns it; the rest of the document has not.
func (it *objectIter) next() (name []byte, escaped bool, value []byte, ok bool, err error) {
	if it.done {
		return nil, false, nil, false, nil
	}
	s := &it.s
	n, err := s.member(&it.m, 1)
	if err != nil {
		return nil, false, nil, false, err
	}
	value = s.b[n.valStart:s.i]
	switch err := s.afterMember('}'); {
	case err != nil:
		return nil, false, nil, false, err
	case s.i > 0 && s.b[s.i-1] == '}':
		if err := it.end(); err != nil {
			return nil, false, nil, false, err
		}
	}
	return s.b[n.start:n.end], n.escaped, value, true, nil
}

// eachMember checks that b is exactly one valid JSON object and calls fn
// with each top-level member's unescaped name and raw value, in order. fn
// may run before a later part of b turns out invalid: callers keep nothing
// when eachMember fails. fn must not keep name. (The claims decoder uses
// objectIter directly, which keeps its arguments off the heap.)
func eachMember(b []byte, fn func(name, value []byte) error) error {
	it, err := newObjectIter(b)
	if err != nil {
		return err
	}
	for {
		raw, escaped, v, ok, err := it.next()
		if err != nil || !ok {
			return err
		}
		name := raw
		if escaped {
			name = appendUnescaped(nil, raw)
		}
		if err := fn(name, v); err != nil {
			return err
		}
	}
}

// validJSON checks that b is exactly one valid JSON value.
func validJSON(b []byte) error {
	s := jsonScanner{b: b}
	s.ws()
	if err := s.value(0); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail("data after the value")
	}
	return nil
}

// arrayIter reads the elements of a JSON array that the scanner has
// already accepted (a member value from objectIter).
type arrayIter struct {
	s    jsonScanner
	done bool
}

func newArrayIter(arr []byte) arrayIter {
	it := arrayIter{s: jsonScanner{b: arr}}
	it.s.i = 1 // [
	it.s.ws()
	if it.s.i < len(arr) && arr[it.s.i] == ']' {
		it.done = true
	}
	return it
}

// next returns the next element, or ok false after the last.
func (it *arrayIter) next() (elem []byte, ok bool, err error) {
	if it.done {
		return nil, false, nil
	}
	s := &it.s
	s.ws()
	start := s.i
	if err := s.value(1); err != nil {
		return nil, false, err
	}
	elem = s.b[start:s.i]
	if err := s.afterMember(']'); err != nil {
		return nil, false, err
	}
	if s.b[s.i-1] == ']' {
		it.done = true
	}
	return elem, true, nil
}

// memberSpan is where one member's name and value start.
type memberSpan struct {
	nameSpan
	valStart int
}

// member reads `"name" : value` at s.i (after any white space), checking the
// name against the object's others.
func (s *jsonScanner) member(m *members, depth int) (memberSpan, error) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return memberSpan{}, s.fail("expected a member name")
	}
	start := s.i + 1
	escaped, err := s.str()
	if err != nil {
		return memberSpan{}, err
	}
	n := nameSpan{start: int32(start), end: int32(s.i - 1), escaped: escaped}
	if err := m.add(s, n); err != nil {
		return memberSpan{}, err
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return memberSpan{}, s.fail("expected :")
	}
	s.i++
	s.ws()
	valStart := s.i
	if err := s.value(depth); err != nil {
		return memberSpan{}, err
	}
	return memberSpan{nameSpan: n, valStart: valStart}, nil
}

// afterMember reads the white space and the , or closing byte after a
// member or element, leaving s.i after it.
func (s *jsonScanner) afterMember(closing byte) error {
	s.ws()
	if s.i >= len(s.b) {
		return s.fail("unterminated object or array")
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return nil
	case closing:
		s.i++
		return nil
	}
	return s.fail("expected , or the end of the object or array")
}

// value reads one value at s.i (no leading white space) at nesting depth
// depth.
func (s *jsonScanner) value(depth int) error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return s.fail("unexpected character")
}

func (s *jsonScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() error {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if ('0' <= c && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if !isJSONNumber(s.b[start:s.i]) {
		s.i = start
		return s.fail("invalid number")
	}
	return nil
}

func (s *jsonScanner) array(depth int) error {
	if depth > maxJSONDepth {
		return s.fail("nested too deeply")
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		if err := s.afterMember(']'); err != nil {
			return err
		}
		if s.b[s.i-1] == ']' {
			return nil
		}
	}
}

// object reads an object at s.i ('{'), refusing a duplicate member name.
func (s *jsonScanner) object(depth int) error {
	if depth > maxJSONDepth {
		return s.fail("nested too deeply")
	}
	s.i++ // {
	m := members{first: s.nNames}
	defer func() { s.nNames = m.first }()
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if _, err := s.member(&m, depth); err != nil {
			return err
		}
		if err := s.afterMember('}'); err != nil {
			return err
		}
		if s.b[s.i-1] == '}' {
			return nil
		}
	}
}

// str reads a string at s.i ('"'), leaving s.i after its closing quote,
// and reports whether it holds an escape.
func (s *jsonScanner) str() (escaped bool, err error) {
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, s.fail("control character in string")
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return false, s.fail("invalid UTF-8 in string")
			}
			s.i += n
		}
	}
	return false, s.fail("unterminated string")
}

// escape reads one escape sequence at s.i ('\'). A \u escape of a UTF-16
// surrogate must be the high half of a pair completed by the next escape.
func (s *jsonScanner) escape() error {
	if s.i+1 >= len(s.b) {
		return s.fail("unterminated string")
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return nil
	case 'u':
	default:
		return s.fail("invalid escape")
	}
	r, ok := hex4(s.b[s.i+2:])
	if !ok {
		return s.fail("invalid escape")
	}
	s.i += 6
	if !utf16.IsSurrogate(r) {
		return nil
	}
	if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
		if r2, ok := hex4(s.b[s.i+2:]); ok && utf16.DecodeRune(r, r2) != utf8.RuneError {
			s.i += 6
			return nil
		}
	}
	return s.fail("lone UTF-16 surrogate in escape")
}

// hex4 decodes four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the value of raw, the bytes between the quotes of
// a string the scanner accepted, to dst.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return append(dst, raw[i:]...)
		}
		dst = append(dst, raw[i:i+j]...)
		i += j
		switch c := raw[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(raw[i+2:])
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // " \ /
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// jsonString returns the value of v, a JSON string the scanner accepted.
func jsonString(v []byte) string {
	raw := v[1 : len(v)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	return string(appendUnescaped(make([]byte, 0, len(raw)), raw))
}

// nextRune decodes the rune at raw[i], in the bytes between the quotes of a
// string the scanner accepted, and returns it with the index after it.
func nextRune(raw []byte, i int) (rune, int) {
	c := raw[i]
	if c < utf8.RuneSelf && c != '\\' {
		return rune(c), i + 1
	}
	if c != '\\' {
		r, n := utf8.DecodeRune(raw[i:])
		return r, i + n
	}
	switch c := raw[i+1]; c {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r, _ := hex4(raw[i+2:])
		if utf16.IsSurrogate(r) {
			r2, _ := hex4(raw[i+8:])
			return utf16.DecodeRune(r, r2), i + 12
		}
		return r, i + 6
	default: // " \ /
		return rune(c), i + 2
	}
}
