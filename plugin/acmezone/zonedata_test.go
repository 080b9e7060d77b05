// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// testZone is the zone all parseZoneData tests load data into.
const testZone = "acme.example.com."

// testRules are the Corefile's names of the parseZoneData tests: one more zone, and an
// in-zone name server.
var testRules = staticRules{zones: []string{testZone, "other.test."}, nameservers: []string{"ns1.acme.example.com."}}

// wantLineError describes an expected lineError: its line and a fragment
// of its Err, enough to tell the reasons apart without freezing the wording.
type wantLineError struct {
	line int
	err  string
}

func TestParseZoneData(t *testing.T) {
	tests := []struct {
		data string
		want []string // records as rr.String() with tabs turned into spaces
		errs []wantLineError
	}{
		// 0: empty input.
		{data: ""},
		// 1: only comments, blank lines and whitespace.
		{data: "; a comment\n\n   \n\t; indented comment\n( ; empty parentheses\n)\n"},
		// 2: relative and absolute names; owners keep their case.
		{
			data: "www IN A 192.0.2.1\nWWW2.Acme.Example.Com. IN A 192.0.2.2\n@ IN A 192.0.2.3\nsub.www IN A 192.0.2.4\n",
			want: []string{
				"www.acme.example.com. 300 IN A 192.0.2.1",
				"WWW2.Acme.Example.Com. 300 IN A 192.0.2.2",
				"acme.example.com. 300 IN A 192.0.2.3",
				"sub.www.acme.example.com. 300 IN A 192.0.2.4",
			},
		},
		// 3: TXT with spaces, escaped quotes, semicolons and
		// parentheses inside quotes, and a trailing comment.
		{
			data: `_txt IN TXT "a b; c" "say \"hi\"" "(x)" ; the comment "not data"` + "\n",
			want: []string{`_txt.acme.example.com. 300 IN TXT "a b; c" "say \"hi\"" "(x)"`},
		},
		// 4: CAA records.
		{
			data: "@ IN CAA 0 issue \"letsencrypt.org\"\n@ IN CAA 128 iodef \"mailto:ops@example.com\"\n",
			want: []string{
				`acme.example.com. 300 IN CAA 0 issue "letsencrypt.org"`,
				`acme.example.com. 300 IN CAA 128 iodef "mailto:ops@example.com"`,
			},
		},
		// 5: A, AAAA, CNAME and MX; relative targets get the origin.
		{
			data: "a IN A 192.0.2.1\naaaa IN AAAA 2001:db8::1\nalias IN CNAME a\next IN CNAME target.example.net.\n@ IN MX 10 mail\n@ 60 MX 20 mx.example.net.\n",
			want: []string{
				"a.acme.example.com. 300 IN A 192.0.2.1",
				"aaaa.acme.example.com. 300 IN AAAA 2001:db8::1",
				"alias.acme.example.com. 300 IN CNAME a.acme.example.com.",
				"ext.acme.example.com. 300 IN CNAME target.example.net.",
				"acme.example.com. 300 IN MX 10 mail.acme.example.com.",
				"acme.example.com. 60 IN MX 20 mx.example.net.",
			},
		},
		// 6: a record spread over lines in parentheses, with comments;
		// the next entry still starts on the right line.
		{
			data: "big IN TXT ( \"part one\" ; first\n             \"part two\" ) ; second\nnext IN A 192.0.2.5\nbroken IN A x\n",
			want: []string{
				`big.acme.example.com. 300 IN TXT "part one" "part two"`,
				"next.acme.example.com. 300 IN A 192.0.2.5",
			},
			errs: []wantLineError{{4, "bad A"}},
		},
		// 7: $TTL and $ORIGIN apply to the entries after them; an
		// explicit TTL does not become the default for later records.
		{
			data: "a IN A 192.0.2.1\n$TTL 1h\nb IN A 192.0.2.2\nc 60 IN A 192.0.2.3\nd IN A 192.0.2.4\n$ORIGIN sub\ne IN A 192.0.2.5\n$origin acme.example.com.\nf IN A 192.0.2.6\n",
			want: []string{
				"a.acme.example.com. 300 IN A 192.0.2.1",
				"b.acme.example.com. 3600 IN A 192.0.2.2",
				"c.acme.example.com. 60 IN A 192.0.2.3",
				"d.acme.example.com. 3600 IN A 192.0.2.4",
				"e.sub.acme.example.com. 3600 IN A 192.0.2.5",
				"f.acme.example.com. 3600 IN A 192.0.2.6",
			},
		},
		// 8: entries starting with whitespace inherit the previous
		// owner, also across a directive and a comment line.
		{
			data: "www IN A 192.0.2.1\n    IN AAAA 2001:db8::1\n$TTL 60\n; note\n\t IN TXT \"tab\"\nmail IN A 192.0.2.2\n  IN TXT \"mail\"\n",
			want: []string{
				"www.acme.example.com. 300 IN A 192.0.2.1",
				"www.acme.example.com. 300 IN AAAA 2001:db8::1",
				`www.acme.example.com. 60 IN TXT "tab"`,
				"mail.acme.example.com. 60 IN A 192.0.2.2",
				`mail.acme.example.com. 60 IN TXT "mail"`,
			},
		},
		// 9: one bad line in the middle: the records before and after
		// survive and the error names line 3.
		{
			data: "one IN A 192.0.2.1\ntwo IN A 192.0.2.2\nthree IN A 192.0.2.333\nfour IN A 192.0.2.4\nfive IN TXT \"5\"\n",
			want: []string{
				"one.acme.example.com. 300 IN A 192.0.2.1",
				"two.acme.example.com. 300 IN A 192.0.2.2",
				"four.acme.example.com. 300 IN A 192.0.2.4",
				`five.acme.example.com. 300 IN TXT "5"`,
			},
			errs: []wantLineError{{3, `bad A A: "192.0.2.333" (line 3, column 22)`}},
		},
		// 10: an error inside a multi-line entry is reported at the
		// entry's first line and points at the line it is on.
		{
			data: "ok IN A 192.0.2.1\nmulti IN MX ( 10\n   bad..name )\nafter IN A 192.0.2.2\n",
			want: []string{
				"ok.acme.example.com. 300 IN A 192.0.2.1",
				"after.acme.example.com. 300 IN A 192.0.2.2",
			},
			errs: []wantLineError{{2, "(line 3, column"}},
		},
		// 11: names outside the zone are rejected, names inside it
		// match case-insensitively.
		{
			data: "other.org. IN A 192.0.2.1\nnotacme.example.com. IN A 192.0.2.2\nX.ACME.EXAMPLE.COM. IN A 192.0.2.3\n",
			want: []string{"X.ACME.EXAMPLE.COM. 300 IN A 192.0.2.3"},
			errs: []wantLineError{
				{1, `name "other.org." is outside zone "acme.example.com."; use a name in the zone or a relative name`},
				{2, `name "notacme.example.com." is outside zone`},
			},
		},
		// 12: SOA and NS records are left to the plugin's options.
		{
			data: "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1.example.net.\nsub IN NS ns2.example.net.\nkeep IN A 192.0.2.1\n",
			want: []string{"keep.acme.example.com. 300 IN A 192.0.2.1"},
			errs: []wantLineError{{1, "soa option"}, {2, "nameserver option"}, {3, "nameserver option"}},
		},
		// 13: $INCLUDE is refused, and so is $GENERATE however it is
		// spelt.
		{
			data: "$INCLUDE /etc/passwd\n$include zone.db sub\n$GENERATE 1-3 host$ A 192.0.2.$\n$GEN(ERATE) 1-3 h$ A 192.0.2.$\nkeep IN A 192.0.2.1\n",
			want: []string{"keep.acme.example.com. 300 IN A 192.0.2.1"},
			errs: []wantLineError{{1, "$INCLUDE is not allowed"}, {2, "$INCLUDE is not allowed"}, {3, "$GENERATE is not supported"}, {4, "$GENERATE is not supported"}},
		},
		// 14: an $ORIGIN outside the zone is reported and ignored.
		{
			data: "$ORIGIN other.org.\nwww IN A 192.0.2.1\n$ORIGIN sub\n$ORIGIN .\nx IN A 192.0.2.2\n",
			want: []string{
				"www.acme.example.com. 300 IN A 192.0.2.1",
				"x.sub.acme.example.com. 300 IN A 192.0.2.2",
			},
			errs: []wantLineError{{1, `$ORIGIN "other.org." is outside zone`}, {4, `$ORIGIN "." is outside zone`}},
		},
		// 15: classes other than IN and meta types are rejected.
		{
			data: "ch CH TXT \"x\"\nany IN TYPE255 \\# 0\naxfr IN AXFR \\# 0\nok IN TXT \"ok\"\n",
			want: []string{`ok.acme.example.com. 300 IN TXT "ok"`},
			errs: []wantLineError{{1, "class CH is not supported"}, {2, "meta type"}, {3, "meta type"}},
		},
		// 16: a type without data is an error, not an empty record,
		// whether or not it is the last entry.
		{
			data: "noaddr IN A\nok IN A 192.0.2.1\nnotxt IN TXT",
			want: []string{"ok.acme.example.com. 300 IN A 192.0.2.1"},
			errs: []wantLineError{{1, "no data after its type"}, {3, "no data after its type"}},
		},
		// 17: blank owner with no previous record, and after a
		// record that failed to parse.
		{
			data: "  IN A 192.0.2.1\nbad IN A nope\n  IN A 192.0.2.2\n",
			errs: []wantLineError{{1, "there is no previous record"}, {2, "bad A"}, {3, "owner name of the entry on line 2, which was rejected"}},
		},
		// 18: an unterminated quote costs only its own line.
		{
			data: "open IN TXT \"abc\nok IN A 192.0.2.1\n",
			want: []string{"ok.acme.example.com. 300 IN A 192.0.2.1"},
			errs: []wantLineError{{1, "not closed on that line"}},
		},
		// 19: an unclosed parenthesis swallows only its continuation
		// lines, not the records after them, also when it happens
		// again further down.
		{
			data: "paren IN TXT ( \"x\"\n   \"y\"\nafter IN A 192.0.2.1\nagain IN TXT ( \"z\"\nlast IN MX ( 10\n  mx )\n",
			want: []string{"after.acme.example.com. 300 IN A 192.0.2.1", "last.acme.example.com. 300 IN MX 10 mx.acme.example.com."},
			errs: []wantLineError{{1, "'(' is never closed"}, {4, "'(' is never closed"}},
		},
		// 20: an extra closing parenthesis.
		{
			data: "extra IN A 192.0.2.1 )\nok IN A 192.0.2.2\n",
			want: []string{"ok.acme.example.com. 300 IN A 192.0.2.2"},
			errs: []wantLineError{{1, "extra closing brace"}},
		},
		// 21: CRLF line ends, as pasted from Windows editors.
		{
			data: "a IN A 192.0.2.1\r\n\r\nb IN TXT \"b\"\r\nc IN A x\r\n",
			want: []string{"a.acme.example.com. 300 IN A 192.0.2.1", `b.acme.example.com. 300 IN TXT "b"`},
			errs: []wantLineError{{4, "bad A"}},
		},
		// 22: garbage after a directive, and a bad $TTL, leave the
		// defaults in place.
		{
			data: "$TTL 1h garbage\n$TTL soon\na IN A 192.0.2.1\n",
			want: []string{"a.acme.example.com. 300 IN A 192.0.2.1"},
			errs: []wantLineError{{1, "garbage"}, {2, "$TTL"}},
		},
	}

	for i, tc := range tests {
		rrs, errs := parseZoneData(testZone, tc.data, 300, testRules)

		got := make([]string, len(rrs))
		for j, rr := range rrs {
			got[j] = strings.ReplaceAll(rr.String(), "\t", " ")
		}
		if len(got) != len(tc.want) {
			t.Errorf("Test %d: got %d records %q, want %d %q", i, len(got), got, len(tc.want), tc.want)
		} else {
			for j := range got {
				if got[j] != tc.want[j] {
					t.Errorf("Test %d: record %d is %q, want %q", i, j, got[j], tc.want[j])
				}
			}
		}

		if len(errs) != len(tc.errs) {
			t.Errorf("Test %d: got %d errors %v, want %d %v", i, len(errs), errs, len(tc.errs), tc.errs)
			continue
		}
		for j, e := range errs {
			if e.Line != tc.errs[j].line || !strings.Contains(e.Err, tc.errs[j].err) {
				t.Errorf("Test %d: error %d is %v, want line %d with %q", i, j, e, tc.errs[j].line, tc.errs[j].err)
			}
		}
	}
}

func TestParseZoneDataLineError(t *testing.T) {
	long := "long IN TXT \"" + strings.Repeat("é", 300) + "\n"
	tests := []struct {
		data     string
		wantText string // "" means only check the length limit
		wantStr  string // "" means skip the Error() check
	}{
		// 0: Error() quotes the text.
		{
			data:     "foo IN TXT\n",
			wantText: "foo IN TXT",
			wantStr:  `line 1 "foo IN TXT": the record has no data after its type (line 1, column 10); add the data, for example the address of an A record`,
		},
		// 1: a multi-line entry is joined with spaces, comments gone.
		{
			data:     "\n\nm IN A ( 192.0.2.1 ; one\n\n  192.0.2.2 ; two\n  )\n",
			wantText: `m IN A ( 192.0.2.1 192.0.2.2 )`,
		},
		// 2: long text is cut to at most 200 bytes on a character
		// boundary.
		{data: long},
	}
	for i, tc := range tests {
		_, errs := parseZoneData(testZone, tc.data, 300, testRules)
		if len(errs) != 1 {
			t.Errorf("Test %d: got %d errors %v, want 1", i, len(errs), errs)
			continue
		}
		e := errs[0]
		if len(e.Text) > maxLineErrorText || !utf8ValidPrefix(e.Text) {
			t.Errorf("Test %d: text %q is %d bytes or not valid UTF-8", i, e.Text, len(e.Text))
		}
		if tc.wantText != "" && e.Text != tc.wantText {
			t.Errorf("Test %d: text is %q, want %q", i, e.Text, tc.wantText)
		}
		if tc.wantStr != "" && e.Error() != tc.wantStr {
			t.Errorf("Test %d: Error() is %q, want %q", i, e.Error(), tc.wantStr)
		}
	}
}

func TestParseZoneDataBadZone(t *testing.T) {
	rrs, errs := parseZoneData("bad..zone.", "a IN A 192.0.2.1\n", 300, testRules)
	if len(rrs) != 0 || len(errs) != 1 || errs[0].Line != 0 {
		t.Errorf("Test 0: got %v, %v; want no records and one error on line 0", rrs, errs)
	}
}

// utf8ValidPrefix reports whether s is valid UTF-8 after a truncation, i.e.
// the cut did not split a character (the inputs used are valid UTF-8).
func utf8ValidPrefix(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s
}

// FuzzParseZoneData checks that no input makes parseZoneData panic, that
// every record it returns lies in the zone (checked on the wire form, not
// with dns.IsSubDomain as the code under test does), and that every error
// points at a real line.
func FuzzParseZoneData(f *testing.F) {
	for _, seed := range []string{
		"",
		"www IN A 192.0.2.1\n   IN AAAA 2001:db8::1\n",
		"$TTL 1h\n$ORIGIN sub\n@ IN TXT \"a;b\" \"c\\\"d\" ( \"e\"\n \"f\" ) ; x\n",
		"@ IN CAA 0 issue \"letsencrypt.org\"\nmail MX 10 mx\nother.org. A 192.0.2.1\n",
		"$INCLUDE /etc/passwd\n$GENERATE 1-100 x$ A 192.0.2.$\n@ SOA a b 1 2 3 4 5\n@ NS ns\n",
		"open TXT \"abc\n( \n)\n) x\n\\\\ ( \"\n\r\n\t;",
		"$ORIGIN ..\n$ORIGIN \\.\n\\@ A 192.0.2.1\n\\065cme.example.com. A 192.0.2.1\n",
	} {
		f.Add(seed)
	}
	f.Add("6e4682c-5109-4a34-ac99-d5097d5b2b68 TXT x\n\\0986e4682c-5109-4a34-ac99-d5097d5b2b68 TXT x\n_ACME-Challenge.x A 192.0.2.1\n")
	f.Add("t TXT \"a\\007b\" \"\\\\\"\nns1 A 192.0.2.1\nx DNAME y\n@ CNAME z.\n")
	zoneWire := lowerWire(f, testZone)
	challengeWire := lowerWire(f, "_acme-challenge."+testZone)
	f.Fuzz(func(t *testing.T, data string) {
		rrs, errs := parseZoneData(testZone, data, 300, testRules)
		for _, rr := range rrs {
			name := rr.Header().Name
			buf := make([]byte, 256)
			n, err := dns.PackDomainName(name, buf, 0, nil, false)
			if err != nil {
				t.Fatalf("owner %q of %v does not pack: %v", name, rr, err)
			}
			owner := asciiLower(buf[:n])
			switch {
			case !wireHasSuffix(owner, zoneWire):
				t.Fatalf("owner %q of %v is outside %q", name, rr, testZone)
			case wireHasSuffix(owner, challengeWire):
				t.Fatalf("owner %q of %v is at or below the zone's challenge name", name, rr)
			case wireUnderTarget(owner, zoneWire):
				t.Fatalf("owner %q of %v is at or below a target", name, rr)
			case string(owner) == string(lowerWire(t, "ns1.acme.example.com.")):
				t.Fatalf("%v is at the in-zone name server", rr)
			}
			switch rr.Header().Rrtype {
			case dns.TypeNS, dns.TypeSOA, dns.TypeDNAME:
				t.Fatalf("%v has a type static data may not have", rr)
			}
			wire := make([]byte, dns.MaxMsgSize)
			end, err := dns.PackRR(rr, wire, 0, nil, false)
			if err != nil {
				t.Fatalf("%v does not pack: %v", rr, err)
			}
			rdata := wire[dns.Len(&dns.ANY{Hdr: *rr.Header()}):end]
			if len(rdata) > maxStaticRdata {
				t.Fatalf("%v has %d bytes of data", rr, len(rdata))
			}
			if rr.Header().Rrtype == dns.TypeTXT {
				for off := 0; off < len(rdata); off += int(rdata[off]) + 1 {
					for _, c := range rdata[off+1 : off+1+int(rdata[off])] {
						if c < 0x20 || c == 0x7f {
							t.Fatalf("%v has a control byte 0x%02x on the wire", rr, c)
						}
					}
				}
			}
		}
		lines := strings.Count(data, "\n") + 1
		for _, e := range errs {
			if e.Line < 1 || e.Line > lines || len(e.Text) > maxLineErrorText || e.Err == "" {
				t.Fatalf("bad lineError %#v for %d lines", e, lines)
			}
		}
	})
}

// wireUnderTarget reports whether the uncompressed, lower-cased wire name is at or below a
// name of the target form <uuid>.<zone>.
func wireUnderTarget(name, zone []byte) bool {
	for off := 0; off < len(name) && name[off] != 0; off += int(name[off]) + 1 {
		next := off + int(name[off]) + 1
		if next <= len(name) && string(name[next:]) == string(zone) {
			return v1alpha1.IsUUIDLabel(string(name[off+1 : next]))
		}
	}
	return false
}

// lowerWire returns the lower-cased wire form of name.
func lowerWire(tb testing.TB, name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		tb.Fatalf("cannot pack %q: %v", name, err)
	}
	return asciiLower(buf[:n])
}

// asciiLower lower-cases ASCII letters only, as DNS name comparison does;
// bytes.ToLower would also rewrite non-ASCII bytes and length octets.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// wireHasSuffix reports whether the uncompressed wire name ends with the
// labels of suffix, comparing at label boundaries only.
func wireHasSuffix(name, suffix []byte) bool {
	for off := 0; off < len(name); off += int(name[off]) + 1 {
		if string(name[off:]) == string(suffix) {
			return true
		}
		if name[off] == 0 {
			break
		}
	}
	return false
}

// TestStaticDataRules: what static data may not hold, each refused with a message that says
// what to do, and what it may.
func TestStaticDataRules(t *testing.T) {
	const target = "b6e4682c-5109-4a34-ac99-d5097d5b2b68"
	for i, tc := range []struct {
		data string
		err  string // "" when accepted
	}{
		{data: target + ` IN TXT "key"`, err: "reserved for Delegation targets"},
		{data: strings.ToUpper(target) + ` IN TXT "key"`, err: "reserved for Delegation targets"},
		{data: `\098` + target[1:] + ` IN TXT "key"`, err: "reserved for Delegation targets"}, // \098 is b
		{data: "x." + target + " IN A 192.0.2.1", err: "reserved for Delegation targets"},
		{data: target + ".other.test. IN TXT \"key\"", err: "outside zone"},
		{data: target + "x IN TXT \"not a UUID\""},
		{data: "_acme-challenge IN TXT \"key\"", err: "the zone's own ACME challenge name"},
		{data: "_ACME-Challenge IN CNAME elsewhere.example.", err: "the zone's own ACME challenge name"},
		{data: "x._acme-challenge IN TXT \"key\"", err: "the zone's own ACME challenge name"},
		{data: "_acme-challenge.www IN TXT \"key\""}, // www's challenge: the administrator's to give
		{data: "ns1 IN A 203.0.113.66", err: "in-zone name server"},
		{data: "NS1 IN AAAA 2001:db8::66", err: "in-zone name server"},
		{data: "ns1 IN TXT \"x\"", err: "in-zone name server"},
		{data: "x.ns1 IN A 192.0.2.1"},
		{data: "@ IN NS ns2.example.", err: "NS records are not allowed"},
		{data: "sub IN NS ns2.example.", err: "NS records are not allowed"},
		{data: "sub IN DNAME elsewhere.example.", err: "DNAME records are not allowed"},
		{data: "@ IN CNAME elsewhere.example.", err: "CNAME at the zone apex"},
		{data: "www IN CNAME elsewhere.example."},
		{data: `t IN TXT "bell\007"`, err: "control characters"},
		{data: `t IN TXT "ok" "tab\009"`, err: "control characters"},
		{data: `t IN TXT "del\127"`, err: "control characters"},
		{data: `t IN TXT "backslash \\ and quote \" and \126"`},
		// Four strings of 255 bytes and their lengths: 1024 bytes of data, the most allowed.
		{data: `t IN TXT "` + strings.Repeat("a", 255) + `" "` + strings.Repeat("b", 255) + `" "` + strings.Repeat("c", 255) + `" "` + strings.Repeat("d", 255) + `"`},
		{data: `t IN TXT "` + strings.Repeat("a", 255) + `" "` + strings.Repeat("b", 255) + `" "` + strings.Repeat("c", 255) + `" "` + strings.Repeat("d", 255) + `" "e"`, err: "more than the 1024"},
	} {
		rrs, errs := parseZoneData(testZone, tc.data+"\n", 300, testRules)
		switch {
		case tc.err == "" && (len(errs) > 0 || len(rrs) != 1):
			t.Errorf("Test %d (%s): %v %v, want the record accepted", i, tc.data, rrs, errs)
		case tc.err != "" && (len(rrs) > 0 || len(errs) != 1 || !strings.Contains(errs[0].Err, tc.err)):
			t.Errorf("Test %d (%s): %v %v, want it rejected with %q", i, tc.data, rrs, errs, tc.err)
		case tc.err != "" && !strings.Contains(errs[0].Err, ";"):
			t.Errorf("Test %d: %q does not say what to do", i, errs[0].Err)
		}
	}
}
