// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package acmezone

import clog "github.com/coredns/coredns/plugin/pkg/log"

func init() { clog.Discard() }
