// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// maxLineErrorText caps lineError.Text so that one huge broken entry (say a
// multi-kilobyte TXT value) cannot flood logs or Kubernetes events.
const maxLineErrorText = 200

// probeLine is appended after every entry handed to the zone parser. It
// serves two purposes: the parser reports what it ended up with for $ORIGIN
// (the probe's owner "@") and $TTL (the probe's TTL), which it does not
// expose otherwise; and because text follows the entry, a record with a type
// but no data ("foo IN A") is reported as an error instead of being returned
// as an empty, RFC 2136-style "dynamic update" record, which the parser does
// when such a record ends the input.
const probeLine = "\n@ IN TXT \"\"\n"

// unclosedParen is the lineError message for an entry whose '(' never closes.
const unclosedParen = "a '(' is never closed; add the matching ')' at the end of the record"

// lineError is one rejected entry of a ConfigMap's zone data.
type lineError struct {
	Line int    // 1-based line number where the entry starts
	Text string // the entry's text as written (trimmed, multi-line entries joined with a space), at most 200 bytes
	Err  string // what is wrong and what to do, a whole sentence
}

// Error formats the entry as `line 3 "foo IN TXT": <Err>`, quoting the text
// so that control characters or odd bytes in it cannot garble a log line.
func (e lineError) Error() string {
	return fmt.Sprintf("line %d %q: %s", e.Line, e.Text, e.Err)
}

// zoneEntry is one logical entry of zone-file text: a record or directive,
// possibly spanning several physical lines inside parentheses.
type zoneEntry struct {
	line       int    // 1-based line where the entry starts
	raw        string // the exact bytes of the entry, comments included, fed to the parser
	text       string // comment-free, trimmed lines joined with a space, for error reports
	blankOwner bool   // the entry starts with whitespace, so it inherits the previous owner
	problem    string // set by the splitter when the entry cannot be parsed at all
}

// parseZoneData parses RFC 1035 zone-file text (as found in one ConfigMap data key) for the zone
// `zone` (a canonical, lower-case, absolute name like "acme.example.com.").
// It returns every valid record and one lineError per entry that was skipped. It never panics,
// whatever the input.
//
// Every entry is parsed on its own by a fresh dns.ZoneParser, so that one
// bad entry cannot stop the entries after it from loading (a single
// ZoneParser stops at the first error). The state a zone file carries from
// entry to entry — $ORIGIN, $TTL and the previous owner name — is carried
// here instead. Two consequences differ from parsing the whole text with
// one ZoneParser, both deliberately: a record's explicit TTL does not become
// the default for the records after it (the default is defaultTTL or the
// last $TTL, as documented), and a quoted string must end on the line it
// starts on (as in BIND), so that a stray quote cannot swallow the rest of
// the data.
//
// Static data is the administrator's, and may not speak for anything else (checkRecord and
// rules say what it may not hold).
func parseZoneData(zone, data string, defaultTTL uint32, rules staticRules) ([]dns.RR, []lineError) {
	// The caller promises a canonical name; canonicalising again is cheap
	// and keeps a caller mistake from turning into parser errors on every
	// line.
	zone = dns.CanonicalName(zone)
	if _, ok := dns.IsDomainName(zone); !ok {
		// Not tied to any line of the data, hence Line 0.
		return nil, []lineError{{Err: fmt.Sprintf("zone name %q is not a valid domain name; fix the zone name in the plugin configuration", zone)}}
	}

	var (
		rrs  []dns.RR
		errs []lineError

		origin = zone
		ttl    = defaultTTL

		// prevOwner is the owner name a blank-owner entry inherits.
		// When an entry with an explicit owner fails to parse, its owner
		// is unknown; prevOwner is then empty and prevOwnerBadLine
		// names that entry, because silently attaching the following
		// blank-owner records to an older name would be worse than
		// rejecting them.
		prevOwner        string
		prevOwnerBadLine int

		scratch = make([]byte, dns.MaxMsgSize) // to measure records
	)

	reject := func(e zoneEntry, msg string) {
		errs = append(errs, lineError{Line: e.line, Text: truncateText(e.text), Err: msg})
	}

	for _, e := range splitEntries(data) {
		directive := ""
		if !e.blankOwner {
			directive = strings.ToUpper(firstToken(e.raw))
		}
		isDirective := directive == "$ORIGIN" || directive == "$TTL" ||
			directive == "$INCLUDE" || directive == "$GENERATE"
		// forgetOwner records that this entry's owner could not be
		// determined; directives and blank-owner entries do not set an
		// owner, so they leave the inherited one alone.
		forgetOwner := func() {
			if !e.blankOwner && !isDirective {
				prevOwner, prevOwnerBadLine = "", e.line
			}
		}

		if e.problem != "" {
			reject(e, e.problem)
			forgetOwner()
			continue
		}
		switch directive {
		case "$INCLUDE":
			// Zone data from a ConfigMap must not read files of the
			// DNS server; the parser refuses $INCLUDE by default as
			// well, this gives the clearer message.
			reject(e, "$INCLUDE is not allowed because zone data cannot read files; put the records directly into the ConfigMap")
			continue
		case "$GENERATE":
			// One line could expand to 65536 records; keep the data
			// explicit instead.
			reject(e, "$GENERATE is not supported; write out each record it would generate")
			continue
		}

		prefix := ""
		if e.blankOwner {
			if prevOwner == "" {
				if prevOwnerBadLine > 0 {
					reject(e, fmt.Sprintf("the entry starts with whitespace, so it would use the owner name of the entry on line %d, which was rejected; fix that entry or put an owner name at the start of this line", prevOwnerBadLine))
				} else {
					reject(e, "the entry starts with whitespace, which means \"same owner name as the previous record\", but there is no previous record; put an owner name at the start of the line")
				}
				continue
			}
			// The previous owner is absolute, so the current
			// $ORIGIN does not change it.
			prefix = prevOwner + " "
		}

		parsed, err := parseEntry(prefix+e.raw, origin, ttl)
		if err != nil {
			reject(e, describeParseError(err, e, len(prefix)))
			forgetOwner()
			continue
		}
		if len(parsed) == 0 {
			// Cannot happen while the probe parses, but an entry that
			// consumed the probe must not be taken as valid.
			reject(e, "the entry could not be parsed; check it against the zone-file format: name [TTL] [class] type data")
			forgetOwner()
			continue
		}
		probe, recs := parsed[len(parsed)-1], parsed[:len(parsed)-1]

		switch len(recs) {
		case 0:
			// A directive ($ORIGIN or $TTL): adopt what the parser
			// made of it, read back from the probe. Relying on the
			// probe rather than on the directive's spelling also
			// covers the forms the lexer accepts but firstToken
			// might not recognise.
			newOrigin := probe.Header().Name
			if !dns.IsSubDomain(zone, newOrigin) {
				reject(e, fmt.Sprintf("$ORIGIN %q is outside zone %q and is ignored; use the zone name or a name below it", newOrigin, zone))
				continue
			}
			origin, ttl = newOrigin, probe.Header().Ttl
		case 1:
			rr := recs[0]
			rr.Header().Name = wireName(rr.Header().Name)
			prevOwner, prevOwnerBadLine = rr.Header().Name, 0
			if msg := checkRecord(zone, rules, rr, scratch); msg != "" {
				reject(e, msg)
				continue
			}
			rrs = append(rrs, rr)
		default:
			// Only $GENERATE yields several records from one entry;
			// it gets here if spelt in a way firstToken missed.
			reject(e, "$GENERATE is not supported; write out each record it would generate")
		}
	}
	return rrs, errs
}

// parseEntry runs a fresh zone parser over one entry followed by probeLine
// and returns everything it produced, the probe record last.
func parseEntry(text, origin string, ttl uint32) ([]dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(text+probeLine), origin, "")
	zp.SetDefaultTTL(ttl)
	// $INCLUDE stays disallowed (the parser's default) as a second line
	// of defence behind the explicit check in parseZoneData.
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
		if len(rrs) > 2 {
			// An entry is at most one record plus the probe; more
			// means $GENERATE, which is rejected anyway, so do not
			// let it expand further.
			break
		}
	}
	return rrs, zp.Err()
}

// staticRules are what static zone data must leave alone besides what its zone alone tells:
// every served zone (their challenge names and targets) and the in-zone name servers.
type staticRules struct {
	zones       []string // canonical
	nameservers []string // canonical names of the name servers inside a served zone
}

// maxStaticRdata bounds the data of one static record: zone data is addresses, short texts
// and policies, and a large record would only make large answers.
const maxStaticRdata = 1024

// checkRecord applies the plugin's policy to a parsed record and returns why it is rejected,
// or "" when it may be served. scratch is a buffer of dns.MaxMsgSize bytes to pack it into.
//
// Besides records that are not zone data at all, static data may not speak for what is not
// the administrator's to say: a challenge target or anything below one (the form
// <uuid>.<zone>), the zone's own challenge name _acme-challenge.<zone> and below, the NS, SOA
// and glue of the zone (the Corefile's), or every name below one (DNAME); nor make an answer
// that hides the apex (a CNAME there), carries raw control bytes in text, or is large.
func checkRecord(zone string, rules staticRules, rr dns.RR, scratch []byte) string {
	h := rr.Header()
	if !dns.IsSubDomain(zone, h.Name) {
		return fmt.Sprintf("name %q is outside zone %q; use a name in the zone or a relative name", h.Name, zone)
	}
	if h.Class != dns.ClassINET {
		return fmt.Sprintf("class %s is not supported, only IN records are served; write IN or leave the class out", dns.Class(h.Class))
	}
	name := strings.ToLower(h.Name)
	switch {
	case h.Rrtype == dns.TypeSOA:
		return "SOA records are not allowed in zone data because the plugin builds the SOA record itself; remove it and use the plugin's soa option"
	case h.Rrtype == dns.TypeNS:
		return "NS records are not allowed in zone data because the plugin builds the NS records itself; remove it and use the plugin's nameserver option"
	case h.Rrtype == dns.TypeNone || h.Rrtype == dns.TypeOPT || (h.Rrtype >= 128 && h.Rrtype <= 255):
		// RFC 6895 section 3.1: 128-255 are query and meta types
		// (AXFR, ANY, TSIG, ...), which never exist as zone data.
		return fmt.Sprintf("type %s is a query or meta type, not data that can be stored in a zone; use a data type such as A, TXT or CNAME", dns.Type(h.Rrtype))
	case h.Rrtype == dns.TypeDNAME:
		return "DNAME records are not allowed in zone data because a DNAME would answer for every name below it, challenge targets included; use a CNAME for each name instead"
	case h.Rrtype == dns.TypeCNAME && name == zone:
		return "a CNAME at the zone apex is not allowed because it would hide the zone's SOA and NS records; put the CNAME at a name below the apex"
	}
	zones := rules.zones
	if !slices.Contains(zones, zone) {
		zones = append(slices.Clip(zones), zone)
	}
	for _, z := range zones {
		if !dns.IsSubDomain(z, name) {
			continue
		}
		if challenge := "_acme-challenge." + z; dns.IsSubDomain(challenge, name) {
			return fmt.Sprintf("name %q is at or below %s, the zone's own ACME challenge name, which only acmezone's challenge records answer; remove the entry (certificates for the zone itself come from a Delegation, not from zone data)", h.Name, challenge)
		}
		for n := name; len(n) > len(z); n = parent(n) {
			if _, ok := v1alpha1.TargetLabel(n, z); ok {
				return fmt.Sprintf("name %q is at or below %s, which has the form <uuid>.<zone> reserved for Delegation targets, where only the owner namespace's challenge records are served; use a name that is not a UUID", h.Name, n)
			}
		}
	}
	if slices.Contains(rules.nameservers, name) {
		return fmt.Sprintf("name %q is an in-zone name server, whose addresses (the glue) come from the Corefile; remove the entry and change the plugin's nameserver option instead", h.Name)
	}
	if t, ok := rr.(*dns.TXT); ok {
		for _, txt := range t.Txt {
			if hasControlBytes(txt) {
				return "the TXT data has control characters (bytes below 0x20 or 0x7f, written as \\DDD escapes); remove them, TXT data served here is printable text"
			}
		}
	}
	end, err := dns.PackRR(rr, scratch, 0, nil, false)
	if err != nil {
		return fmt.Sprintf("the record cannot be encoded (%v); check its data", err)
	}
	if n := end - dns.Len(&dns.ANY{Hdr: *h}); n > maxStaticRdata {
		return fmt.Sprintf("the record's data is %d bytes long, more than the %d a static record may have; shorten it or split it into several records", n, maxStaticRdata)
	}
	return ""
}

// hasControlBytes reports whether the TXT string s (in miekg/dns's presentation form, where
// \DDD and \X are escapes) holds a byte below 0x20 or 0x7f once unescaped, as the wire would.
func hasControlBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			c = s[i]
			if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
				c = byte((int(s[i]-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')) & 0xff)
				i += 2
			}
		}
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// describeParseError turns a zone parser error for entry e into a lineError
// message. The parser counts lines and columns within the text it was given;
// they are translated back to the ConfigMap's lines, minus the owner prefix
// added for blank-owner entries.
func describeParseError(err error, e zoneEntry, prefixLen int) string {
	msg := err.Error()
	var pe *dns.ParseError
	if !errors.As(err, &pe) {
		return fmt.Sprintf("cannot parse the entry: %s; check it against the zone-file format: name [TTL] [class] type data", msg)
	}
	// The format is `dns: <what>: "<token>" at line: <l>:<c>`, where the
	// column is that of the token's last character.
	msg = strings.TrimPrefix(msg, "dns: ")
	where := ""
	if i := strings.LastIndex(msg, " at line: "); i >= 0 {
		l, c, ok := strings.Cut(msg[i+len(" at line: "):], ":")
		line, err1 := strconv.Atoi(l)
		col, err2 := strconv.Atoi(c)
		if ok && err1 == nil && err2 == nil {
			msg = msg[:i]
			lines := strings.Count(strings.TrimSuffix(e.raw, "\n"), "\n") + 1
			switch {
			case line >= 1 && line <= lines:
				if line == 1 {
					col -= prefixLen
				}
				where = fmt.Sprintf(" (line %d, column %d)", e.line+line-1, max(col, 1))
			default:
				// The parser only noticed the problem in the
				// probe, e.g. at an unclosed parenthesis.
				where = fmt.Sprintf(" (line %d)", e.line+lines-1)
			}
		}
	}
	// Lexer errors repeat themselves as the token (`unbalanced brace:
	// "unbalanced brace"`), and some errors carry an empty token; both
	// read better without it.
	if what, tok, ok := strings.Cut(msg, ": \""); ok {
		if tok == "\"" || strings.TrimSuffix(tok, "\"") == what {
			msg = what
		}
	}
	if strings.HasPrefix(msg, "unexpected newline") {
		return "the record has no data after its type" + where + "; add the data, for example the address of an A record"
	}
	return fmt.Sprintf("cannot parse the entry: %s%s; check it against the zone-file format: name [TTL] [class] type data", msg, where)
}

// splitEntries cuts zone-file text into logical entries, following the
// miekg/dns lexer's rules for quotes, escapes, comments and parentheses so
// that each entry is exactly what the parser would treat as one record or
// directive. Entries without content (blank lines, comments) are dropped.
func splitEntries(data string) []zoneEntry {
	var out []zoneEntry
	pos, line := 0, 1
	recovering := false
	for pos < len(data) {
		e, hasContent, unclosed, next, nextLine := scanEntry(data, pos, line, recovering)
		if hasContent {
			out = append(out, e)
		}
		// Once one '(' is found never to close, every later entry
		// is cut at lines that look like a new owner or directive
		// too; otherwise each of many unclosed entries would scan to
		// the end of the data again, which is quadratic.
		recovering = recovering || unclosed
		pos, line = next, nextLine
	}
	return out
}

// startsEntry reports whether data[p], the first byte of a line, looks like
// the start of a new owner name or directive rather than the continuation
// of a parenthesised record.
func startsEntry(data string, p int) bool {
	return p < len(data) && !strings.ContainsRune(" \t\r\n;()\"", rune(data[p]))
}

// scanEntry reads one logical entry starting at data[start], which is the
// start of line number line. It returns the entry, whether it contains
// anything but whitespace, comments and parentheses, whether it has a '('
// that is never closed, and where (offset and line number) the next entry
// starts. When recovering, an open '(' also ends at a line for which
// startsEntry is true.
func scanEntry(data string, start, line int, recovering bool) (e zoneEntry, hasContent, unclosed bool, next, nextLine int) {
	var (
		brace                   int
		quote, escape, comment  bool
		lineText                strings.Builder // current physical line without its comment
		lineTexts               []string        // one per physical line of the entry
		lineStarts              = []int{start}  // offsets of the entry's physical lines
		ownerDecided, blank     bool
		unterminatedQuoteAtLine int
	)
	finish := func(end, lines int) zoneEntry {
		return zoneEntry{
			line:       line,
			raw:        data[start:end],
			text:       joinLines(lineTexts[:min(lines, len(lineTexts))]),
			blankOwner: blank,
		}
	}

	i := start
	for i < len(data) {
		c := data[i]
		i++
		if c == '\n' {
			lineTexts = append(lineTexts, strings.TrimSpace(lineText.String()))
			lineText.Reset()
			escape, comment = false, false
			if quote {
				// The lexer would carry the string on to the next
				// line; BIND refuses, and so do we, so that one
				// missing quote does not eat the rest of the data.
				unterminatedQuoteAtLine = line + len(lineStarts) - 1
				break
			}
			if brace == 0 {
				e = finish(i, len(lineTexts))
				return e, hasContent, false, i, line + len(lineTexts)
			}
			if recovering && hasContent && startsEntry(data, i) {
				e = finish(i, len(lineTexts))
				e.problem = unclosedParen
				return e, true, true, i, line + len(lineTexts)
			}
			lineStarts = append(lineStarts, i)
			continue
		}
		if comment {
			continue
		}
		if !ownerDecided && c != '(' && c != ')' && c != '\r' {
			// The lexer takes the first token as the owner unless
			// whitespace comes first; parentheses and CRs before it
			// are skipped, and a comment may precede it inside
			// parentheses.
			if c != ';' {
				ownerDecided, blank = true, c == ' ' || c == '\t'
			}
		}
		if c == '\r' && !quote {
			// Outside quotes the lexer drops CRs (CRLF line ends).
			escape = false
			continue
		}
		if escape {
			escape = false
			hasContent = true
			lineText.WriteByte(c)
			continue
		}
		switch c {
		case '\\':
			escape, hasContent = true, true
		case '"':
			quote, hasContent = !quote, true
		case ';':
			if !quote {
				comment = true
				continue
			}
			hasContent = true
		case '(', ')':
			if quote {
				hasContent = true
				break
			}
			if c == '(' {
				brace++
			} else if brace > 0 {
				brace--
			} else {
				// An extra ')': leave it in for the parser to
				// report, but do not let the count go negative
				// and swallow later lines.
				hasContent = true
			}
		case ' ', '\t':
		default:
			hasContent = true
		}
		lineText.WriteByte(c)
	}

	if unterminatedQuoteAtLine == 0 {
		lineTexts = append(lineTexts, strings.TrimSpace(lineText.String()))
		if quote {
			unterminatedQuoteAtLine = line + len(lineTexts) - 1
		}
	}
	if unterminatedQuoteAtLine > 0 {
		e = finish(i, len(lineTexts))
		e.problem = fmt.Sprintf("a quoted string opened on line %d is not closed on that line; add the closing \" (inside quotes, write \\\" for a literal quote and \\010 for a line break)", unterminatedQuoteAtLine)
		return e, true, false, i, line + len(lineTexts)
	}
	if brace > 0 && hasContent {
		// The data ends inside parentheses. Rather than lose
		// everything after the '(', guess where the broken entry ends:
		// at the first later line that starts in column 0 with
		// something that looks like an owner name or directive.
		lines := len(lineStarts)
		for k := 1; k < len(lineStarts); k++ {
			if startsEntry(data, lineStarts[k]) {
				lines = k
				break
			}
		}
		end := len(data)
		if lines < len(lineStarts) {
			end = lineStarts[lines]
		}
		e = finish(end, lines)
		e.problem = unclosedParen
		return e, true, true, end, line + lines
	}
	e = finish(len(data), len(lineTexts))
	return e, hasContent, false, len(data), line + len(lineTexts)
}

// joinLines joins the non-empty lines with single spaces.
func joinLines(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(l)
	}
	return b.String()
}

// truncateText shortens s to at most maxLineErrorText bytes, cutting at a
// UTF-8 character boundary and marking the cut with "...".
func truncateText(s string) string {
	if len(s) <= maxLineErrorText {
		return s
	}
	cut := maxLineErrorText - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// firstToken returns the entry's first token the way the miekg/dns lexer
// assembles an owner name, so that directives are recognised however the
// lexer would recognise them: unescaped parentheses and CRs are skipped, and
// the token ends at unescaped whitespace, a comment, a quote or a newline.
func firstToken(raw string) string {
	var b strings.Builder
	escape := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '\n':
			return b.String()
		case c == '\r':
			escape = false
		case escape:
			escape = false
			b.WriteByte(c)
		case c == '\\':
			escape = true
			b.WriteByte(c)
		case c == ' ' || c == '\t' || c == ';' || c == '"':
			// Also covers leading whitespace (a blank owner),
			// for which there is no token.
			return b.String()
		case c == '(' || c == ')':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
