// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

// Command pause is the sandbox ("pause") container of the cluster-e2e cluster's pods, a Go
// program doing the job of Kubernetes' pause.c: it holds the pod's namespaces open, reaps the
// zombies of a pod that shares its PID namespace (it is PID 1 there, so orphans become its
// children), and exits 0 when told to stop. containerd's CRI runs it as its sandbox_image,
// built into an image by build/images (`make cluster-images`).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(wait(listen()))
}

// listen starts the delivery of SIGINT, SIGTERM and SIGCHLD; before it, a child's exit would
// go unnoticed until the next one.
func listen() <-chan os.Signal {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	return sigs
}

// wait reaps children on SIGCHLD and returns the exit status, 0, on SIGINT or SIGTERM.
func wait(sigs <-chan os.Signal) int {
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return 0
		}
		reap()
	}
	return 0
}

// reap collects every child that has exited, without blocking. One SIGCHLD may stand for
// several exits (a pending signal does not queue), hence the loop.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil { // 0: the children left are running; ECHILD: none left
			return
		}
	}
}
