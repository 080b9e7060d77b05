// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package stack

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

// WriteTargetKey writes a random target key (32 bytes, base64, as `head -c 32 /dev/urandom |
// base64` makes one) to dir/target-key for acmezone's CoreDNS (target_key) and
// acmezone-controller (--target-key-file), and returns its path and the key.
func WriteTargetKey(dir string) (string, v1alpha1.TargetKey, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	text := []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	path := filepath.Join(dir, "target-key")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		return "", v1alpha1.TargetKey{}, err
	}
	k, err := v1alpha1.NewTargetKey(text)
	return path, k, err
}
