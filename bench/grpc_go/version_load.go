// A grpc-go load client for `deno task bench cri.version`: CLIENTS connections at once, each
// calling RuntimeService/Version CALLS times after WARMUP, printing one JSON line of latencies.
// Built from Debian's golang-google-grpc-dev (GOPATH mode); messages pass as raw bytes, so no
// generated code is needed: an empty VersionRequest is zero bytes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func main() {
	socket := flag.String("socket", "", "the CRI socket")
	clients := flag.Int("clients", 32, "connections calling at once")
	calls := flag.Int("calls", 300, "measured calls per connection")
	warmup := flag.Int("warmup", 50, "unmeasured calls per connection first")
	flag.Parse()
	conns := make([]*grpc.ClientConn, *clients)
	for i := range conns {
		conn, err := grpc.Dial("unix://"+*socket, grpc.WithInsecure(), grpc.WithBlock())
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		defer conn.Close()
		conns[i] = conn
	}
	version := func(conn *grpc.ClientConn) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in, out := []byte{}, []byte{}
		return conn.Invoke(ctx, "/runtime.v1.RuntimeService/Version", &in, &out, grpc.ForceCodec(rawCodec{}))
	}
	run := func(count int, measure bool) ([]float64, error) {
		var mu sync.Mutex
		var firstErr error
		samples := make([]float64, 0, count*len(conns))
		var wg sync.WaitGroup
		for _, conn := range conns {
			wg.Add(1)
			go func(conn *grpc.ClientConn) {
				defer wg.Done()
				for i := 0; i < count; i++ {
					start := time.Now()
					err := version(conn)
					ms := float64(time.Since(start).Microseconds()) / 1000
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if measure {
						samples = append(samples, ms)
					}
					mu.Unlock()
				}
			}(conn)
		}
		wg.Wait()
		return samples, firstErr
	}
	if _, err := run(*warmup, false); err != nil {
		fmt.Fprintln(os.Stderr, "warm-up:", err)
		os.Exit(1)
	}
	samples, err := run(*calls, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "version:", err)
		os.Exit(1)
	}
	sort.Float64s(samples)
	at := func(p float64) float64 { // nearest rank, as bench/bench.ts's percentile
		rank := int(math.Ceil(p / 100 * float64(len(samples))))
		if rank < 1 {
			rank = 1
		}
		return samples[rank-1]
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"p50_ms": at(50), "p99_ms": at(99), "calls": len(samples), "clients": len(conns),
	})
}
