package stack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/acmezone/acmezone/api/v1alpha1"
)

var root = filepath.Join("..", "..")

// TestResolverFollowsDelegation checks the DNS half of the seed's flow with real parts: unbound
// knows only the provider, the provider delegates acme.example.com to acmezone, and the user's
// CNAME leads the resolver to the TXT value acmezone serves from the API server.
func TestResolverFollowsDelegation(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`")
	}
	unbound, err := exec.LookPath("unbound")
	if err != nil {
		t.Fatal("unbound is not installed: apt-get install unbound (.ci/run does)")
	}
	coredns := filepath.Join(root, "bin", "coredns")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	env := &envtest.Environment{
		CRDDirectoryPaths:       []string{filepath.Join(root, "deploy", "crds")},
		ErrorIfCRDPathMissing:   true,
		ControlPlaneStopTimeout: 5 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	dir := t.TempDir()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "x"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	var procs []*Process
	defer func() {
		for _, p := range procs {
			p.Stop()
			if t.Failed() {
				t.Logf("%s log:\n%s", p.Name, tail(p.Logs(), 60))
			}
		}
	}()
	az, err := StartAcmezone(ctx, dir, coredns, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, az)
	provider, err := StartProvider(ctx, dir, coredns)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, provider.Process)
	resolver, err := StartResolver(ctx, dir, unbound)
	if err != nil {
		t.Fatal(err)
	}
	procs = append(procs, resolver)

	scheme := k8sruntime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	target := "b6e4682c-5109-4a34-ac99-d5097d5b2b68.acme.example.com."
	if err := c.Create(ctx, &v1alpha1.Delegation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "example.com"},
		Spec:       v1alpha1.DelegationSpec{Domain: "example.com", Target: target},
	}); err != nil {
		t.Fatal(err)
	}
	key := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	if err := c.Create(ctx, v1alpha1.NewChallengeRecord("shop", target, key)); err != nil {
		t.Fatal(err)
	}

	ask := func(name string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeTXT)
		cl := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
		r, _, err := cl.Exchange(m, ResolverIP+":53")
		return r, err
	}
	// Before the CNAME exists: the challenge name does not exist at the provider.
	if r, err := ask("_acme-challenge.example.com."); err != nil || r.Rcode != dns.RcodeNameError {
		t.Fatalf("before the CNAME: %v %v, want NXDOMAIN", r, err)
	}
	// The target is reachable through the NS delegation alone.
	waitTXT(t, ask, target, key)

	if err := provider.AddRecord("_acme-challenge IN CNAME " + target); err != nil {
		t.Fatal(err)
	}
	waitTXT(t, ask, "_acme-challenge.example.com.", key)
}

func waitTXT(t *testing.T, ask func(string) (*dns.Msg, error), name, value string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := ask(name)
		if err == nil {
			for _, rr := range r.Answer {
				if txt, ok := rr.(*dns.TXT); ok && slices.Contains(txt.Txt, value) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT %s through the resolver: %v %v, want %q", name, r, err, value)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
