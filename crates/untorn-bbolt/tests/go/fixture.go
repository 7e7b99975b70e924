// fixture: writes and reads bbolt files with real bbolt (go.etcd.io/bbolt 1.3.6) for
// untorn-bbolt's integration tests.
//
//	fixture -op make  -db F [-pagesize N] [-nofreelistsync] [-n KEYS] [-seed S]
//	fixture -op dump  -db F      every bucket ("B <path> <seq>") and pair ("P <path> <key> <value>"),
//	                             hex, path components joined by '/', in bbolt's ForEach order
//	fixture -op check -db F      tx.Check(); prints errors, exits 1 if any ("ok" otherwise)
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o fixture fixture.go
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	dbPath   = flag.String("db", "", "database file")
	op       = flag.String("op", "", "make|dump|check")
	pageSize = flag.Int("pagesize", 4096, "page size (make)")
	noFLSync = flag.Bool("nofreelistsync", false, "NoFreelistSync (make)")
	nKeys    = flag.Int("n", 3000, "keys in the main bucket (make)")
	seed     = flag.Int64("seed", 1, "PRNG seed (make)")
	tenants  = flag.Int("tenants", 0, "sub-buckets of a bucket \"tenants\" that holds only buckets (make)")
)

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "fixture: "+f+"\n", a...)
	os.Exit(2)
}

func main() {
	flag.Parse()
	switch *op {
	case "make":
		doMake()
	case "dump":
		doDump()
	case "check":
		doCheck()
	default:
		die("unknown -op %q", *op)
	}
}

func open(ro bool) *bolt.DB {
	db, err := bolt.Open(*dbPath, 0600, &bolt.Options{Timeout: time.Second, PageSize: *pageSize,
		NoFreelistSync: *noFLSync, ReadOnly: ro})
	if err != nil {
		die("open: %v", err)
	}
	return db
}

func val(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	rng.Read(b)
	return b
}

func doMake() {
	db := open(false)
	rng := rand.New(rand.NewSource(*seed))
	upd := func(f func(tx *bolt.Tx) error) {
		if err := db.Update(f); err != nil {
			die("update: %v", err)
		}
	}
	// Main bucket, written in several transactions so that pages are freed and reused.
	const batch = 500
	for i := 0; i < *nKeys; i += batch {
		upd(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("alpha"))
			if err != nil {
				return err
			}
			for j := i; j < i+batch && j < *nKeys; j++ {
				if err := b.Put([]byte(fmt.Sprintf("key%07d", j)), val(rng, 20+rng.Intn(180))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Nested buckets: alpha/nested (a real tree) and alpha/nested/deeper (inline).
	upd(func(tx *bolt.Tx) error {
		n, err := tx.Bucket([]byte("alpha")).CreateBucketIfNotExists([]byte("nested"))
		if err != nil {
			return err
		}
		for j := 0; j < 400; j++ {
			if err := n.Put([]byte(fmt.Sprintf("n%05d", j)), val(rng, 64)); err != nil {
				return err
			}
		}
		d, err := n.CreateBucketIfNotExists([]byte("deeper"))
		if err != nil {
			return err
		}
		for j := 0; j < 5; j++ {
			if err := d.Put([]byte{byte(j), 0xff}, val(rng, 8)); err != nil {
				return err
			}
		}
		if _, err := d.NextSequence(); err != nil {
			return err
		}
		return nil
	})
	// A bucket of buckets only (etcd-like data stores group keys this way).
	if *tenants > 0 {
		upd(func(tx *bolt.Tx) error {
			t, err := tx.CreateBucketIfNotExists([]byte("tenants"))
			if err != nil {
				return err
			}
			for j := 0; j < *tenants; j++ {
				s, err := t.CreateBucketIfNotExists([]byte(fmt.Sprintf("t%04d", j)))
				if err != nil {
					return err
				}
				for k := 0; k < 3; k++ {
					if err := s.Put([]byte(fmt.Sprintf("k%d", k)), val(rng, 16)); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	// Small inline bucket, an empty bucket, large values, binary keys.
	upd(func(tx *bolt.Tx) error {
		s, err := tx.CreateBucketIfNotExists([]byte("small"))
		if err != nil {
			return err
		}
		for j := 0; j < 3; j++ {
			if err := s.Put([]byte(fmt.Sprintf("s%d", j)), []byte(fmt.Sprintf("v%d", j))); err != nil {
				return err
			}
		}
		if err := s.SetSequence(42); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists([]byte("empty")); err != nil {
			return err
		}
		big, err := tx.CreateBucketIfNotExists([]byte("big"))
		if err != nil {
			return err
		}
		for j := 0; j < 6; j++ {
			if err := big.Put([]byte(fmt.Sprintf("big%d", j)), val(rng, (j+1)*(*pageSize)+rng.Intn(1000))); err != nil {
				return err
			}
		}
		bin, err := tx.CreateBucketIfNotExists([]byte{0x00, 0xfe, 'b'})
		if err != nil {
			return err
		}
		for j := 0; j < 300; j++ {
			if err := bin.Put(val(rng, 1+rng.Intn(40)), val(rng, rng.Intn(50))); err != nil {
				return err
			}
		}
		return nil
	})
	// Deletes and overwrites: frees pages.
	upd(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("alpha"))
		for j := 0; j < *nKeys; j += 7 {
			if err := b.Delete([]byte(fmt.Sprintf("key%07d", j))); err != nil {
				return err
			}
		}
		for j := 3; j < *nKeys; j += 11 {
			if err := b.Put([]byte(fmt.Sprintf("key%07d", j)), val(rng, 30)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Close(); err != nil {
		die("close: %v", err)
	}
	fmt.Println("ok")
}

func hexPath(p [][]byte) string {
	s := make([]string, len(p))
	for i, c := range p {
		s[i] = hex.EncodeToString(c)
	}
	return strings.Join(s, "/")
}

func doDump() {
	db := open(true)
	defer db.Close()
	out := os.Stdout
	err := db.View(func(tx *bolt.Tx) error {
		type frame struct {
			path [][]byte
			b    *bolt.Bucket
		}
		var walk func(path [][]byte, b *bolt.Bucket) error
		walk = func(path [][]byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					sub := b.Bucket(k)
					p := append(append([][]byte{}, path...), append([]byte{}, k...))
					fmt.Fprintf(out, "B %s %d\n", hexPath(p), sub.Sequence())
					return walk(p, sub)
				}
				fmt.Fprintf(out, "P %s %s %s\n", hexPath(path), hex.EncodeToString(k), hex.EncodeToString(v))
				return nil
			})
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			p := [][]byte{append([]byte{}, name...)}
			fmt.Fprintf(out, "B %s %d\n", hexPath(p), b.Sequence())
			return walk(p, b)
		})
	})
	if err != nil {
		die("view: %v", err)
	}
}

func doCheck() {
	db := open(true)
	defer db.Close()
	n := 0
	_ = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			if n < 20 {
				fmt.Println(err)
			}
			n++
		}
		return nil
	})
	if n > 0 {
		fmt.Printf("%d errors\n", n)
		os.Exit(1)
	}
	fmt.Println("ok")
}
