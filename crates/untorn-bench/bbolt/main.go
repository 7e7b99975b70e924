// untorn-bench-bbolt: the bbolt column of untorn-bench. The Rust harness starts it once
// per (repetition, phase group), exactly like its own children, and reads the same JSON
// lines from stdout. Phases, data set and checks mirror crates/untorn-bench/src/workload.rs,
// latency.rs and data.rs; keep them in step.
//
// Build (GOPATH mode against Debian's golang-github-coreos-bbolt-dev, no network):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/peers/untorn-bench-bbolt \
//	    crates/untorn-bench/bbolt/main.go
//
// Ops: -op=suite (every phase), -op=phase -phase=NAME (stop after NAME), -op=latency,
// -op=selftest (prints the data set's known answers).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	op        = flag.String("op", "suite", "suite|phase|latency|selftest")
	engine    = flag.String("engine", "bbolt", "must be bbolt")
	phaseName = flag.String("phase", "", "phase to stop after (-op=phase)")
	keys      = flag.Uint64("keys", 1000000, "keys in the bulk load")
	keySize   = flag.Int("key-size", 24, "key bytes")
	valueSize = flag.Int("value-size", 150, "value bytes")
	seed      = flag.Uint64("seed", 3, "data set seed")
	cacheMiB  = flag.Int("cache-mib", 1024, "unused: bbolt reads through the OS page cache")
	dir       = flag.String("dir", os.TempDir(), "parent directory")
	commits   = flag.Uint64("commits", 2000, "durable commits (-op=latency)")
	// bbolt splits leaves only at commit, so one transaction inserting N random keys into
	// an empty tree keeps growing one in-memory leaf: O(N^2) (100,000 keys: ~47 s). The
	// bulk load therefore commits every bulkTxn keys; the report says so.
	bulkTxn = flag.Uint64("bulk-txn", 10000, "keys per transaction in the bulk load")
)

const (
	gamma       = 0x9E3779B97F4A7C15
	valueStream = 0xD1B54A32D192ED03
	preload     = 10000
)

var bucketName = []byte("bench")

func splitmix64(state *uint64) uint64 {
	*state += gamma
	z := *state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func fill(state uint64, out []byte) {
	for i := 0; i < len(out); i += 8 {
		w := splitmix64(&state)
		for j := 0; j < 8 && i+j < len(out); j++ {
			out[i+j] = byte(w >> (8 * j))
		}
	}
}

func keyState(i uint64) uint64 { return *seed ^ bits.RotateLeft64(i*gamma, 17) }

func key(i uint64, buf []byte) []byte {
	buf = buf[:*keySize]
	fill(keyState(i), buf)
	return buf
}

func value(i uint64, buf []byte) []byte {
	buf = buf[:*valueSize]
	fill(keyState(i)^valueStream, buf)
	return buf
}

func digest(v []byte) uint64 {
	if len(v) == 0 {
		return 0
	}
	return uint64(len(v))<<8 | uint64(v[0])
}

func valueDigest(i uint64) uint64 {
	s := keyState(i) ^ valueStream
	first := byte(splitmix64(&s))
	if *valueSize == 0 {
		return 0
	}
	return uint64(*valueSize)<<8 | uint64(first)
}

type params struct {
	keys, individual, batches, batchSize, nosync, scans uint64
	scanLen                                             int
	threads                                             []int
}

func maxu(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func scaled(k uint64) params {
	k = maxu(k, 2)
	return params{k, maxu(k/1000, 1), 100, maxu(k/1000, 1), maxu(k/20, 1), maxu(k/2, 1), 10, []int{4, 8, 16, 32}}
}

func (p params) total() uint64 { return p.keys + p.individual + p.batches*p.batchSize + p.nosync }

type measurement struct {
	Engine   string   `json:"engine"`
	Phase    string   `json:"phase"`
	Secs     *float64 `json:"secs,omitempty"`
	Bytes    *uint64  `json:"bytes,omitempty"`
	Ops      uint64   `json:"ops"`
	Checksum uint64   `json:"checksum"`
}

type latency struct {
	Engine  string  `json:"engine"`
	Commits uint64  `json:"commits"`
	P50     float64 `json:"p50_us"`
	P99     float64 `json:"p99_us"`
	Max     float64 `json:"max_us"`
	RawP50  float64 `json:"raw_p50_us"`
	RawP99  float64 `json:"raw_p99_us"`
}

func emitJSON(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		die("json: %v", err)
	}
	fmt.Println(string(b))
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "untorn-bench-bbolt: "+format+"\n", a...)
	os.Exit(1)
}

func dirSize(d string) uint64 {
	var total uint64
	_ = filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				total += uint64(info.Size())
			}
		}
		return nil
	})
	return total
}

func openDB(path string) *bolt.DB {
	db, err := bolt.Open(path, 0600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		die("open %s: %v", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		die("create bucket: %v", err)
	}
	return db
}

type runner struct {
	p     params
	db    *bolt.DB
	path  string
	dir   string
	stop  string
	print bool
}

func (r *runner) emit(m measurement) {
	if r.stop == "" || r.stop == m.Phase {
		label := ""
		if m.Secs != nil {
			label = fmt.Sprintf("%.3f s", *m.Secs)
		} else if m.Bytes != nil {
			label = fmt.Sprintf("%.1f MiB", float64(*m.Bytes)/(1<<20))
		}
		fmt.Fprintf(os.Stderr, "%8s %-24s %s\n", "bbolt", m.Phase, label)
		emitJSON(m)
	}
}

func (r *runner) time(phase string, ops, checksum uint64, secs float64) bool {
	r.emit(measurement{Engine: "bbolt", Phase: phase, Secs: &secs, Ops: ops, Checksum: checksum})
	return r.stop == phase
}

func (r *runner) size(phase string) bool {
	b := dirSize(r.dir)
	r.emit(measurement{Engine: "bbolt", Phase: phase, Bytes: &b, Ops: 0, Checksum: 0})
	return r.stop == phase
}

func (r *runner) writeItems(first, txns, perTxn uint64) float64 {
	start := time.Now()
	for t := uint64(0); t < txns; t++ {
		if err := r.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketName)
			for i := uint64(0); i < perTxn; i++ {
				id := first + t*perTxn + i
				// bbolt keeps the key and value slices until the commit: fresh ones each.
				k := make([]byte, *keySize)
				v := make([]byte, *valueSize)
				if err := b.Put(key(id, k), value(id, v)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			die("write: %v", err)
		}
	}
	return time.Since(start).Seconds()
}

func (r *runner) getItems(first, count uint64) uint64 {
	k := make([]byte, *keySize)
	var sum, expected uint64
	if err := r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		for id := first; id < first+count; id++ {
			v := b.Get(key(id, k))
			if v == nil {
				return fmt.Errorf("item %d not found", id)
			}
			sum += digest(v)
			expected += valueDigest(id)
		}
		return nil
	}); err != nil {
		die("read: %v", err)
	}
	if sum != expected {
		die("value digests of items %d.. differ: %d != %d", first, sum, expected)
	}
	return sum
}

func (r *runner) length() (float64, uint64) {
	var n uint64
	start := time.Now()
	_ = r.db.View(func(tx *bolt.Tx) error {
		n = uint64(tx.Bucket(bucketName).Stats().KeyN)
		return nil
	})
	return time.Since(start).Seconds(), n
}

func (r *runner) suite() {
	p := r.p
	per := *bulkTxn
	if per == 0 || per > p.keys {
		per = p.keys
	}
	start := time.Now()
	for first := uint64(0); first < p.keys; first += per {
		n := per
		if first+n > p.keys {
			n = p.keys - first
		}
		r.writeItems(first, 1, n)
	}
	if r.time("bulk-load", p.keys, 0, time.Since(start).Seconds()) || r.size("size-after-load") {
		return
	}
	if r.time("individual-writes", p.individual, 0, r.writeItems(p.keys, p.individual, 1)) {
		return
	}
	if r.time("batch-writes", p.batches*p.batchSize, 0, r.writeItems(p.keys+p.individual, p.batches, p.batchSize)) {
		return
	}
	r.db.NoSync = true
	secs := r.writeItems(p.keys+p.individual+p.batches*p.batchSize, p.nosync, 1)
	r.db.NoSync = false
	_ = r.db.Update(func(*bolt.Tx) error { return nil })
	_ = r.db.Sync()
	if r.time("nosync-writes", p.nosync, 0, secs) {
		return
	}
	secs, n := r.length()
	if n != p.total() {
		die("len() = %d after the writes, expected %d", n, p.total())
	}
	if r.time("len", 1, n, secs) {
		return
	}
	start = time.Now()
	sum := r.getItems(0, p.keys)
	if r.time("random-reads", p.keys, sum, time.Since(start).Seconds()) {
		return
	}
	k := make([]byte, *keySize)
	var entries, rsum uint64
	start = time.Now()
	_ = r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketName).Cursor()
		for id := uint64(0); id < p.scans; id++ {
			n := 0
			for kk, v := c.Seek(key(id%p.keys, k)); kk != nil && n < p.scanLen; kk, v = c.Next() {
				n++
				rsum += digest(v)
			}
			if n == 0 {
				die("scan from item %d found nothing", id)
			}
			entries += uint64(n)
		}
		return nil
	})
	if r.time("random-range-reads", entries, rsum, time.Since(start).Seconds()) {
		return
	}
	for _, threads := range p.threads {
		total := p.total()
		per := total / uint64(threads)
		sums := make([]uint64, threads)
		var ready, wg sync.WaitGroup
		gate := make(chan struct{})
		ready.Add(threads)
		wg.Add(threads)
		for t := 0; t < threads; t++ {
			go func(t int) {
				defer wg.Done()
				last := uint64(t+1) * per
				if t+1 == threads {
					last = total
				}
				ready.Done()
				<-gate
				sums[t] = r.getItems(uint64(t)*per, last-uint64(t)*per)
			}(t)
		}
		ready.Wait()
		start = time.Now()
		close(gate)
		wg.Wait()
		secs := time.Since(start).Seconds()
		var s uint64
		for _, x := range sums {
			s += x
		}
		if r.time(fmt.Sprintf("random-reads-%dt", threads), total, s, secs) {
			return
		}
	}
	half := p.total() / 2
	start = time.Now()
	if err := r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		for id := uint64(0); id < half; id++ {
			if err := b.Delete(key(id, k)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		die("removals: %v", err)
	}
	if r.time("removals", half, 0, time.Since(start).Seconds()) {
		return
	}
	remaining := p.total() - half
	if _, n := r.length(); n != remaining {
		die("after removals: len() = %d, expected %d", n, remaining)
	}
	if r.size("size-after-removals") {
		return
	}
	// Compaction: bbolt's own method (`bbolt compact`: bolt.Compact into a fresh file,
	// FillPercent 1.0), all in one transaction, then the copy replaces the original.
	start = time.Now()
	tmp := filepath.Join(r.dir, "compact.bbolt")
	dst, err := bolt.Open(tmp, 0600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		die("compact open: %v", err)
	}
	if err := bolt.Compact(dst, r.db, 0); err != nil {
		die("compact: %v", err)
	}
	_ = dst.Close()
	_ = r.db.Close()
	if err := os.Rename(tmp, r.path); err != nil {
		die("rename: %v", err)
	}
	if d, err := os.Open(r.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	r.db = openDB(r.path)
	if r.time("compaction", remaining, 0, time.Since(start).Seconds()) {
		return
	}
	r.size("size-after-compaction")
	if _, n := r.length(); n != remaining {
		die("after compaction: len() = %d, expected %d", n, remaining)
	}
	sample := remaining
	if sample > 10000 {
		sample = 10000
	}
	r.getItems(half, sample)
}

func percentileUs(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	idx := int(float64(len(sorted)-1)*p + 0.5)
	return float64(sorted[idx].Nanoseconds()) / 1e3
}

func (r *runner) latency(n uint64) {
	r.writeItems(0, 1, preload)
	raw, err := os.OpenFile(filepath.Join(r.dir, "raw-fdatasync"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0600)
	if err != nil {
		die("raw: %v", err)
	}
	page := make([]byte, 4096)
	for i := range page {
		page[i] = 0xa5
	}
	for slot := int64(0); slot < 256; slot++ {
		if _, err := raw.WriteAt(page, slot*4096); err != nil {
			die("raw: %v", err)
		}
	}
	_ = raw.Sync()
	rawLat := make([]time.Duration, 0, n)
	lat := make([]time.Duration, 0, n)
	k := make([]byte, *keySize)
	v := make([]byte, *valueSize)
	for i := uint64(0); i < n; i++ {
		t := time.Now()
		if _, err := raw.WriteAt(page, int64(i%256)*4096); err != nil {
			die("raw: %v", err)
		}
		if err := fdatasync(raw); err != nil {
			die("raw fdatasync: %v", err)
		}
		rawLat = append(rawLat, time.Since(t))
		id := preload + i
		kk, vv := key(id, k), value(id, v)
		t = time.Now()
		if err := r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketName).Put(kk, vv) }); err != nil {
			die("commit: %v", err)
		}
		lat = append(lat, time.Since(t))
	}
	sort.Slice(rawLat, func(a, b int) bool { return rawLat[a] < rawLat[b] })
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	l := latency{"bbolt", n, percentileUs(lat, 0.5), percentileUs(lat, 0.99), percentileUs(lat, 1), percentileUs(rawLat, 0.5), percentileUs(rawLat, 0.99)}
	fmt.Fprintf(os.Stderr, "   bbolt commit p50 %.0f µs p99 %.0f µs (raw fdatasync p50 %.0f µs p99 %.0f µs)\n", l.P50, l.P99, l.RawP50, l.RawP99)
	emitJSON(l)
}

func main() {
	flag.Parse()
	_ = cacheMiB
	if *engine != "bbolt" {
		die("this driver runs bbolt only, not %q", *engine)
	}
	if *op == "selftest" {
		var s uint64
		k := make([]byte, 24)
		*seed, *keySize = 3, 24
		fmt.Printf("splitmix64(0)=%#x key0=%x digest0=%d\n", splitmix64(&s), key(0, k), valueDigest(0))
		return
	}
	if err := os.MkdirAll(*dir, 0755); err != nil {
		die("mkdir: %v", err)
	}
	d, err := os.MkdirTemp(*dir, "untorn-bench-bbolt-")
	if err != nil {
		die("temp dir: %v", err)
	}
	defer os.RemoveAll(d)
	r := &runner{p: scaled(*keys), dir: d, path: filepath.Join(d, "bench.bbolt")}
	r.db = openDB(r.path)
	switch *op {
	case "suite":
		r.suite()
	case "phase":
		r.stop = *phaseName
		r.suite()
	case "latency":
		r.latency(*commits)
	default:
		die("unknown -op %q", *op)
	}
	_ = r.db.Close()
}
