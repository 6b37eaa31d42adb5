// Command load_ebpf loads a flow dissector object with cilium/ebpf and
// test-runs it on frames.
//
// Usage: load_ebpf OBJECT.o [PROGRAM]
//
// It reads and writes the same lines as load_libbpf.c: on stdin one frame per
// line, its bytes in hex from the Ethernet header, optionally a space and the
// input flags (BPF_FLOW_DISSECTOR_F_*, decimal); on stdout, per frame, the
// program's return value in decimal, a space, and the 56 bytes of struct
// bpf_flow_keys after the run in hex. Exit status 0 when every frame ran, 1 on
// a usage or input error, 2 when cilium/ebpf or the kernel refused.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

const (
	keysSize    = 56   // sizeof(struct bpf_flow_keys), include/uapi/linux/bpf.h
	flagsOffset = 48   // offsetof(struct bpf_flow_keys, flags)
	maxFrame    = 4096 // BPF_PROG_TEST_RUN refuses a larger flow dissector frame
)

func fail(status int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(status)
}

// pickProgram returns the program called name, or the only program when name is empty.
func pickProgram(spec *ebpf.CollectionSpec, name string) (string, *ebpf.ProgramSpec) {
	if name != "" {
		if prog, ok := spec.Programs[name]; ok {
			return name, prog
		}
		fail(2, "no program %s", name)
	}
	if len(spec.Programs) != 1 {
		fail(2, "%d programs: name the one to run", len(spec.Programs))
	}
	for n, prog := range spec.Programs {
		return n, prog
	}
	panic("unreachable")
}

// parseLine reads "HEX [FLAGS]".
func parseLine(line string) ([]byte, uint32, error) {
	fields := strings.Split(line, " ")
	if len(fields) > 2 {
		return nil, 0, errors.New("too many fields")
	}
	frame, err := hex.DecodeString(fields[0])
	if err != nil || len(frame) > maxFrame {
		return nil, 0, errors.New("bad frame")
	}
	var flags uint64
	if len(fields) == 2 {
		if flags, err = strconv.ParseUint(fields[1], 10, 32); err != nil {
			return nil, 0, errors.New("bad flags")
		}
	}
	return frame, uint32(flags), nil
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fail(1, "usage: %s OBJECT.o [PROGRAM] < frames", os.Args[0])
	}
	path, name := os.Args[1], ""
	if len(os.Args) == 3 {
		name = os.Args[2]
	}

	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		fail(2, "%s: %v", path, err)
	}
	name, progSpec := pickProgram(spec, name)
	if progSpec.Type != ebpf.FlowDissector {
		fail(2, "%s: program %s is %v (section %s), not a flow dissector", path, name, progSpec.Type, progSpec.SectionName)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			fail(2, "%s: %+v", path, verr)
		}
		fail(2, "%s: %v", path, err)
	}
	defer coll.Close()
	prog := coll.Programs[name]

	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 0, 2*maxFrame+32), 2*maxFrame+32)
	for lineno := 1; scanner.Scan(); lineno++ {
		frame, flags, err := parseLine(scanner.Text())
		if err != nil {
			fail(1, "stdin:%d: %v: expected a frame in hex (at most %d bytes), then optionally a space and decimal flags", lineno, err, maxFrame)
		}
		// Only `flags` may be non-zero in ctx_in (net/bpf/test_run.c,
		// bpf_prog_test_run_flow_dissector); data_out receives the keys.
		var ctx [keysSize]byte
		binary.LittleEndian.PutUint32(ctx[flagsOffset:], flags)
		keys := make([]byte, keysSize)
		retval, err := prog.Run(&ebpf.RunOptions{Data: frame, DataOut: keys, Context: ctx})
		if err != nil {
			fail(2, "stdin:%d: %v", lineno, err)
		}
		fmt.Printf("%d %s\n", retval, hex.EncodeToString(keys))
	}
	if err := scanner.Err(); err != nil {
		fail(1, "stdin: %v", err)
	}
}
