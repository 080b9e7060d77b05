// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	criapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// removePods stops and removes every pod sandbox through containerd's CRI, as the kubelet would:
// their containers end, CNI takes their addresses back, their shims exit. It runs after the
// kubelet has stopped (which would start them again) and before containerd stops.
func removePods(ctx context.Context, socket string) (int, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rt := criapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	list, err := rt.ListPodSandbox(ctx, &criapi.ListPodSandboxRequest{})
	if err != nil {
		return 0, fmt.Errorf("list pod sandboxes: %w", err)
	}
	var first error
	for _, sb := range list.Items {
		if _, err := rt.StopPodSandbox(ctx, &criapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil && first == nil {
			first = fmt.Errorf("stop pod %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &criapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil && first == nil {
			first = fmt.Errorf("remove pod %s/%s: %w", sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err)
		}
	}
	return len(list.Items), first
}
