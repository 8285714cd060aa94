// Command go_bench is the Go twin of bench/goro_bench.cpp: the same benchmarks with the
// same work, written the way a Go programmer would write them.
//
//	go_bench [--procs N] [name...]
//
// Prints one line per benchmark: name<TAB>ns_per_op<TAB>extra ("-" when unused).
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// result of one repetition: elapsed wall time, number of operations and an optional
// extra measurement.
type result struct {
	elapsed time.Duration
	ops     int
	extra   string
}

type benchmark struct {
	name string
	fn   func() result
}

// Benchmarks, in the order they run. park_1m comes first so that its memory measurement
// starts from a process that has not created goroutines yet.
var benchmarks = []benchmark{
	{"park_1m", parkMillion},
	{"spawn_join", spawnJoin},
	{"pingpong", pingPong},
	{"unbuffered_spsc", unbufferedSPSC},
	{"buffered_spsc", bufferedSPSC},
	{"buffered_mpmc", bufferedMPMC},
	{"select2", select2},
	{"mutex_contended", mutexContended},
	{"waitgroup_fanout", waitGroupFanout},
	{"timers_10k", timers10k},
	{"yield", yieldBench},
	{"bulk_register", bulkRegister},
	{"idle_cpu", idleCPU},
	{"echo_pingpong", echoPingPong},
	{"echo_1k", echoThousand},
}

func must(ok bool, what string) {
	if !ok {
		panic("benchmark self-check failed: " + what)
	}
}

func spawnJoin() result {
	const n = 1_000_000
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
	}
	wg.Wait()
	return result{time.Since(start), n, "-"}
}

// residentBytes returns VmRSS from /proc/self/status.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func parkMillion() result {
	const n = 1_000_000
	before := residentBytes()
	start := time.Now()
	gate := make(chan struct{})
	var parked, finished sync.WaitGroup
	parked.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-gate
			finished.Done()
		}()
	}
	parked.Wait()
	perG := (residentBytes() - before) / n
	close(gate)
	finished.Wait()
	return result{time.Since(start), n, strconv.FormatInt(perG, 10)}
}

func pingPong() result {
	const n = 1_000_000
	ping := make(chan int)
	pong := make(chan int)
	start := time.Now()
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < n; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	<-pong
	elapsed := time.Since(start)
	must(v == n, "pingpong count")
	return result{elapsed, n, "-"}
}

// spsc moves n items from one producer goroutine to one consumer goroutine.
func spsc(n, capacity int) result {
	ch := make(chan int, capacity)
	sums := make(chan int)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	go func() {
		sum := 0
		for v := range ch {
			sum += v
		}
		sums <- sum
	}()
	sum := <-sums
	elapsed := time.Since(start)
	must(sum == n*(n-1)/2, "spsc sum")
	return result{elapsed, n, "-"}
}

func unbufferedSPSC() result { return spsc(2_000_000, 0) }
func bufferedSPSC() result   { return spsc(10_000_000, 1024) }

func bufferedMPMC() result {
	const n, producers, consumers = 10_000_000, 4, 4
	ch := make(chan int, 1024)
	sums := make(chan int, consumers)
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := p; i < n; i += producers {
				ch <- i
			}
		}(p)
	}
	go func() {
		wg.Wait()
		close(ch)
	}()
	for c := 0; c < consumers; c++ {
		go func() {
			sum := 0
			for v := range ch {
				sum += v
			}
			sums <- sum
		}()
	}
	sum := 0
	for c := 0; c < consumers; c++ {
		sum += <-sums
	}
	elapsed := time.Since(start)
	must(sum == n*(n-1)/2, "mpmc sum")
	return result{elapsed, n, "-"}
}

func select2() result {
	const n = 5_000_000
	a := make(chan int, 1024)
	b := make(chan int, 1024)
	start := time.Now()
	produce := func(ch chan<- int, from int) {
		for i := from; i < n; i += 2 {
			ch <- i
		}
	}
	go produce(a, 0)
	go produce(b, 1)
	sum := 0
	for got := 0; got < n; got++ {
		select {
		case v := <-a:
			sum += v
		case v := <-b:
			sum += v
		}
	}
	elapsed := time.Since(start)
	must(sum == n*(n-1)/2, "select2 sum")
	return result{elapsed, n, "-"}
}

func mutexContended() result {
	const n, workers = 10_000_000, 8
	var mu sync.Mutex
	counter := 0
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/workers; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	must(counter == n, "mutex counter")
	return result{elapsed, n, "-"}
}

func waitGroupFanout() result {
	const rounds, width = 100, 10_000
	start := time.Now()
	var wg sync.WaitGroup
	for r := 0; r < rounds; r++ {
		wg.Add(width)
		for i := 0; i < width; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
	return result{time.Since(start), rounds * width, "-"}
}

func timers10k() result {
	const rounds, width = 40, 10_000
	start := time.Now()
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		for i := 0; i < width; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-time.After(time.Millisecond)
			}()
		}
		wg.Wait()
	}
	return result{time.Since(start), rounds * width, "-"}
}

func yieldBench() result {
	const n, workers = 1_000_000, 2
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return result{time.Since(start), n * workers, "-"}
}

// ---- bulk_register: the registrar's fan-out/fan-in shape ----

type registration struct {
	student int
	ticket  uint64
}

type outcome struct {
	reg registration
	err error
}

type summary struct {
	registered, failed int
	checksum           uint64
}

var errCourseFull = errors.New("course full")

// registerWork is ~200 ns of deterministic CPU work: a chain of dependent
// multiply-xorshift rounds (the same constants and count as the C++ twin).
func registerWork(student int) uint64 {
	x := uint64(student)*0x9E3779B97F4A7C15 + 1
	for i := 0; i < hashRounds; i++ {
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
		x ^= x >> 29
	}
	return x
}

const hashRounds = 90

func register(student int) (registration, error) {
	ticket := registerWork(student)
	if student%10 == 9 {
		return registration{}, errCourseFull
	}
	return registration{student, ticket}, nil
}

func bulkRegister() result {
	const students = 100_000
	start := time.Now()
	in := make(chan outcome)
	out := make(chan summary)
	go func() {
		var s summary
		for o := range in {
			if o.err != nil {
				s.failed++
				continue
			}
			s.registered++
			s.checksum ^= o.reg.ticket
		}
		out <- s
	}()
	var wg sync.WaitGroup
	for id := 0; id < students; id++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			reg, err := register(id)
			in <- outcome{reg, err}
		}(id)
	}
	wg.Wait()
	close(in)
	s := <-out
	elapsed := time.Since(start)
	must(s.failed == students/10 && s.registered == students-students/10, "bulk_register counts")
	return result{elapsed, students, "-"}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func idleCPU() result {
	const sleepers, period, total = 8, 100 * time.Millisecond, 2 * time.Second
	cpu0 := cpuSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < sleepers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < int(total/period); i++ {
				time.Sleep(period)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return result{elapsed, 1, fmt.Sprintf("%.4f", cpuSeconds()-cpu0)}
}

// measure runs fn up to three times (stopping early once a repetition took more than a
// second) and returns the repetition with the median ns/op; extra comes from the first
// repetition.
func measure(fn func() result) (float64, string) {
	var nsPerOp []float64
	extra := "-"
	for rep := 0; rep < 3; rep++ {
		runtime.GC()
		r := fn()
		if rep == 0 {
			extra = r.extra
		}
		nsPerOp = append(nsPerOp, float64(r.elapsed.Nanoseconds())/float64(r.ops))
		if r.elapsed > time.Second {
			break
		}
	}
	sort.Float64s(nsPerOp)
	k := len(nsPerOp)
	if k%2 == 1 {
		return nsPerOp[k/2], extra
	}
	return (nsPerOp[k/2-1] + nsPerOp[k/2]) / 2, extra
}

func main() {
	procs := runtime.NumCPU()
	var filter []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--procs" && i+1 < len(args):
			p, err := strconv.Atoi(args[i+1])
			if err != nil || p < 1 {
				fmt.Fprintf(os.Stderr, "go_bench: bad --procs %q\n", args[i+1])
				os.Exit(2)
			}
			procs = p
			i++
		case strings.HasPrefix(a, "--procs="):
			p, err := strconv.Atoi(strings.TrimPrefix(a, "--procs="))
			if err != nil || p < 1 {
				fmt.Fprintf(os.Stderr, "go_bench: bad %s\n", a)
				os.Exit(2)
			}
			procs = p
		case a == "--list":
			for _, b := range benchmarks {
				fmt.Println(b.name)
			}
			return
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "usage: go_bench [--procs N] [--list] [name...]\n")
			os.Exit(2)
		default:
			filter = append(filter, a)
		}
	}
	for _, f := range filter {
		known := false
		for _, b := range benchmarks {
			known = known || b.name == f
		}
		if !known {
			fmt.Fprintf(os.Stderr, "go_bench: unknown benchmark %q (see --list)\n", f)
			os.Exit(2)
		}
	}
	runtime.GOMAXPROCS(procs)
	for _, b := range benchmarks {
		selected := len(filter) == 0
		for _, f := range filter {
			selected = selected || f == b.name
		}
		if !selected {
			continue
		}
		ns, extra := measure(b.fn)
		fmt.Printf("%s\t%.1f\t%s\n", b.name, ns, extra)
	}
}

// echoServer accepts on a loopback port and echoes every connection on its own goroutine,
// the way a Go programmer writes it. It returns the address and a stop function.
func echoServer() (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

// echoRoundTrips sends a 64-byte message and reads the echo back, n times, on one
// connection.
func echoRoundTrips(addr string, n int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	msg := make([]byte, 64)
	back := make([]byte, 64)
	for i := 0; i < n; i++ {
		msg[0] = byte(i)
		if _, err := c.Write(msg); err != nil {
			panic(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			panic(err)
		}
		must(back[0] == byte(i), "echo content")
	}
}

// echoPingPong: TCP echo round trips over loopback on one connection (ns per round trip).
func echoPingPong() result {
	const n = 50_000
	addr, stop := echoServer()
	defer stop()
	start := time.Now()
	echoRoundTrips(addr, n)
	return result{time.Since(start), n, "-"}
}

// echoThousand: 1 000 connections at once, each doing round trips (ns per round trip,
// all connections together).
func echoThousand() result {
	const conns = 1000
	const each = 100
	addr, stop := echoServer()
	defer stop()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			echoRoundTrips(addr, each)
		}()
	}
	wg.Wait()
	return result{time.Since(start), conns * each, "-"}
}
