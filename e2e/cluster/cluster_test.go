//go:build cluster

package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/acmezone/acmezone/e2e/cluster"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestCluster(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "bin", "cluster-run")
	ctx := context.Background()
	c, err := cluster.Up(ctx, root, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Down(context.Background()) })
	if os.Getenv("HOLD") != "" {
		select {}
	}
}
