// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as pause with children of its own (TestMain).
const helperEnv = "PAUSE_TEST_HELPER"

// children is how many short-lived children the helper starts, each exit a SIGCHLD.
const children = 20

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "pause":
		// pause with children that exit at once and are never waited for: only reap can
		// collect them. The signals are on before the first child starts, as in main.
		sigs := listen()
		for range children {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"=exit")
			if err := cmd.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			fmt.Println(cmd.Process.Pid)
		}
		fmt.Println("ready")
		os.Exit(wait(sigs))
	case "exit":
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPause runs the program's loop in a process of its own with exited children, checks that
// none is left a zombie, then stops it with each stop signal and checks the exit status.
func TestPause(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=pause")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			var pids []int
			sc := bufio.NewScanner(out)
			for sc.Scan() && sc.Text() != "ready" {
				pid, err := strconv.Atoi(sc.Text())
				if err != nil {
					t.Fatalf("helper printed %q", sc.Text())
				}
				pids = append(pids, pid)
			}
			if len(pids) != children {
				t.Fatalf("helper started %d children, want %d (%v)", len(pids), children, sc.Err())
			}
			for _, pid := range pids {
				waitReaped(t, cmd.Process.Pid, pid)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("after %s: %v, want exit status 0", sig, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %s", sig)
			}
		})
	}
}

// waitReaped waits until pid is no longer parent's child, a zombie or not: Linux keeps a
// zombie's /proc entry until its parent waits for it.
func waitReaped(t *testing.T, parent, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// A process reaped between the open and the read gives ESRCH, not ENOENT.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			return // the pid is another process's now
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of %d still there after 10 s, state %s: not reaped", pid, parent, f[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
