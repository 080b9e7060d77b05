// Copyright 2026 The acmezone Authors.
// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kubectl runs bin/kubectl as system:masters and returns its output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.Root, "bin", "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// WaitDeployment waits until every replica of a Deployment runs its current template and is
// available.
func (c *Cluster) WaitDeployment(ctx context.Context, namespace, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		var d appsv1.Deployment
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d)
		switch {
		case err != nil:
			last = err.Error()
		case d.Status.ObservedGeneration < d.Generation:
			last = "generation not observed yet"
		default:
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			s := d.Status
			if s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want {
				return nil
			}
			last = fmt.Sprintf("%d replicas, %d updated, %d available, want %d", s.Replicas, s.UpdatedReplicas, s.AvailableReplicas, want)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s/%s not rolled out: %s\n%s", namespace, name, last, c.podStates(context.Background(), namespace))
		case <-time.After(time.Second):
		}
	}
}

// podStates describes the pods of a namespace and why they are not running, for failures.
func (c *Cluster) podStates(ctx context.Context, namespace string) string {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "  pod %s: %s", p.Name, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			switch {
			case cs.State.Waiting != nil:
				fmt.Fprintf(&b, "; %s waiting: %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
			case cs.State.Terminated != nil:
				fmt.Fprintf(&b, "; %s terminated: %s %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.Message)
			default:
				fmt.Fprintf(&b, "; %s ready=%v restarts=%d", cs.Name, cs.Ready, cs.RestartCount)
			}
		}
		for _, cond := range p.Status.Conditions {
			if cond.Status != corev1.ConditionTrue && cond.Message != "" {
				fmt.Fprintf(&b, "; %s: %s", cond.Type, cond.Message)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// PodStates describes the pods of the namespaces, for failure messages.
func (c *Cluster) PodStates(ctx context.Context, namespaces ...string) string {
	var b strings.Builder
	for _, ns := range namespaces {
		b.WriteString(ns + ":\n" + c.podStates(ctx, ns))
	}
	return b.String()
}

// SetLoadBalancerIP gives a LoadBalancer Service its external address, as a load-balancer
// controller (a cloud's, MetalLB) would: kube-proxy then routes ip to the Service's endpoints.
func (c *Cluster) SetLoadBalancerIP(ctx context.Context, namespace, name, ip string) error {
	var svc corev1.Service
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &svc); err != nil {
		return err
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return fmt.Errorf("service %s/%s is of type %s, not LoadBalancer", namespace, name, svc.Spec.Type)
	}
	vip := corev1.LoadBalancerIPModeVIP
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip, IPMode: &vip}}
	return c.Client.Status().Update(ctx, &svc)
}
