// cniclient: a minimal CNI runtime built on libcni, for black-box conformance runs.
//
// It does what container runtimes (containerd, CRI-O, podman's CNI backend) do through
// libcni: load a .conflist, validate it (VERSION of every plugin), run ADD/CHECK/DEL of the
// whole chain with version negotiation, prevResult injection, capability (runtimeConfig)
// injection and libcni's on-disk result cache.
//
// Build offline against Debian's golang-github-appc-cni-dev (libcni 1.1.2):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o cniclient .
//
// Usage:
//
//	cniclient -conflist F -path D1:D2 -cache DIR -netns P -ifname N -id ID [-cap k=JSON]... CMD
//	CMD: add | check | del | validate | version TYPE | cached
//
// On success `add` prints the result (as libcni parsed it) on stdout. On failure the
// program prints one JSON object {"error": "...", "code": N, "msg": "...", "details": "..."}
// on stdout (code/msg/details only when the plugin returned a CNI error object) and exits 1.
//
// libcni 1.1.2 has no GC or STATUS (those arrived with libcni 1.2 / CNI spec 1.1.0), and
// it cannot parse results whose cniVersion is 1.1.0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

type capFlags map[string]interface{}

func (c capFlags) String() string { return fmt.Sprint(map[string]interface{}(c)) }

func (c capFlags) Set(v string) error {
	key, raw, ok := strings.Cut(v, "=")
	if !ok || key == "" {
		return fmt.Errorf("-cap wants key=JSON, got %q", v)
	}
	var value interface{}
	if err := json.Unmarshal([]byte(raw), &value); err != nil {
		value = raw // a bare string is fine too
	}
	c[key] = value
	return nil
}

func fail(err error) {
	out := map[string]interface{}{"error": err.Error()}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		out["code"] = cniErr.Code
		out["msg"] = cniErr.Msg
		if cniErr.Details != "" {
			out["details"] = cniErr.Details
		}
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	os.Exit(1)
}

func main() {
	conflist := flag.String("conflist", "", "the .conflist file")
	path := flag.String("path", "/opt/cni/bin", "plugin directories, ':'-separated (CNI_PATH)")
	cache := flag.String("cache", "", "libcni result cache dir (default libcni's /var/lib/cni)")
	netns := flag.String("netns", "", "CNI_NETNS")
	ifname := flag.String("ifname", "eth0", "CNI_IFNAME")
	id := flag.String("id", "", "CNI_CONTAINERID")
	cniArgs := flag.String("args", "", "CNI_ARGS as K=V;K=V")
	timeout := flag.Duration("timeout", 60*time.Second, "per-command timeout")
	caps := capFlags{}
	flag.Var(caps, "cap", "capability argument key=JSON (repeatable), e.g. deviceID=\"0000:00:1f.7\"")
	flag.Parse()
	if flag.NArg() < 1 {
		fail(fmt.Errorf("usage: cniclient [flags] add|check|del|validate|version TYPE|cached"))
	}
	cmd := flag.Arg(0)

	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(*path, ":"), *cache, nil)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if cmd == "version" {
		if flag.NArg() < 2 {
			fail(fmt.Errorf("version wants a plugin type"))
		}
		info, err := cni.GetVersionInfo(ctx, flag.Arg(1))
		if err != nil {
			fail(err)
		}
		b, _ := json.Marshal(map[string]interface{}{"supportedVersions": info.SupportedVersions()})
		fmt.Println(string(b))
		return
	}

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(fmt.Errorf("loading %s: %w", *conflist, err))
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    *id,
		NetNS:          *netns,
		IfName:         *ifname,
		CapabilityArgs: caps,
	}
	if *cniArgs != "" {
		for _, pair := range strings.Split(*cniArgs, ";") {
			k, v, _ := strings.Cut(pair, "=")
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}

	switch cmd {
	case "validate":
		capsSeen, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			fail(err)
		}
		b, _ := json.Marshal(map[string]interface{}{"capabilities": capsSeen})
		fmt.Println(string(b))
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(b))
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "cached":
		res, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			fail(err)
		}
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	default:
		fail(fmt.Errorf("unknown command %q (libcni 1.1.2 has no GC or STATUS)", cmd))
	}
}
