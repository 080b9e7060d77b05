// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Package dnstest sends raw DNS queries for tests that must see an answer as it came over the
// wire (its size, not the size of the message re-packed).
package dnstest

import (
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// ExchangeUDP sends m to addr in one UDP datagram and returns the question and the answer as
// they crossed the wire, and the answer unpacked.
func ExchangeUDP(addr string, m *dns.Msg, timeout time.Duration) (query, answer []byte, resp *dns.Msg, err error) {
	if query, err = m.Pack(); err != nil {
		return nil, nil, nil, fmt.Errorf("pack the query: %w", err)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(query); err != nil {
		return nil, nil, nil, err
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		return nil, nil, nil, err
	}
	resp = new(dns.Msg)
	if err := resp.Unpack(buf[:n]); err != nil {
		return nil, nil, nil, fmt.Errorf("unpack the answer: %w", err)
	}
	return query, buf[:n], resp, nil
}
