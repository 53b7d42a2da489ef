// Command actiond watches video and says what people in it are doing.
//
//	actiond classify [--model FILE] [--top-k K] [--threads N] [--json] [--dump-input FILE.npy] [--window D] VIDEO|rtsp://...
//	actiond model build motion --out FILE
//	actiond model build pptsmv2 (--weights FILE.pdparams | --random-seed N [--no-lta]) [--int8 [--calibration-clips F,…]] --out FILE
//	actiond model fetch pptsmv2 [--out FILE]
//	actiond model info [--json] FILE
//	actiond model run --model FILE --input IN.npy --output OUT.npy
//	actiond model bench --model FILE [--threads T] [--batch B] [--iterations N] [--json]
//	actiond scene --direction DIR [--size WxH] [--fps N] [--duration D] --out FILE.mp4
//	actiond sim [--listen ADDR] [--file NAME=PATH]... [--scene NAME=DIRECTION]...
//	actiond serve [--config FILE] [--listen ADDR] [--metrics-listen ADDR] [--model FILE] [--stream NAME=URL]... [--demo]
//	actiond demo [--files [VIDEO...]]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

const usage = `actiond: says what people in video are doing.

Usage:
  actiond classify [--model FILE] [--top-k K] [--threads N] [--json] [--dump-input FILE.npy]
                   [--window 10s] [--transport auto|udp|tcp] [--timeout 10s] VIDEO|rtsp://...
  actiond model build motion --out FILE
  actiond model build pptsmv2 (--weights FILE.pdparams | --random-seed N [--no-lta]) [--int8 [--calibration-clips F,…]] --out FILE
  actiond model fetch pptsmv2 [--out FILE]
  actiond model info [--json] FILE
  actiond model run --model FILE --input IN.npy --output OUT.npy
  actiond model bench --model FILE [--threads T] [--batch B] [--iterations N] [--json]
  actiond scene --direction left|right|up|down|still [--size WxH] [--fps N] [--duration D] --out FILE.mp4
  actiond sim [--listen 127.0.0.1:8554] [--file NAME=PATH]... [--scene NAME=DIRECTION]...
  actiond serve [--config FILE.yaml] [--listen 127.0.0.1:50051] [--metrics-listen ADDR] [--model FILE]
                [--stream NAME=rtsp://...]... [--state-file FILE] [--log-level info]
  actiond serve --demo [--camera-listen 127.0.0.1:8554]   (the motion model and a demo camera)
  actiond demo                       (the same as serve --demo)
  actiond demo --files [VIDEO...]    (classify synthetic scenes and VIDEO files, then exit)
  actiond version

Environment:
  ACTIOND_MODEL     model used when --model is not given
  ACTIOND_<KEY>     serve: any configuration key, e.g. ACTIOND_LISTEN, ACTIOND_AUTH_TOKENS
                    (or ACTIOND_TOKENS), ACTIOND_INFERENCE_MAX_BATCH; see README "Server"
  ACTIOND_ORT_LIB   path of libonnxruntime.so (version 1.29.0)
  ACTIOND_PPTSMV2_URL  where model fetch downloads the checkpoint from
`

// errUsage marks errors that are the user's invocation; main prints usage.
var errUsage = errors.New("usage")

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "actiond: %v\n", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, "\n"+usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "classify":
		return runClassify(rest)
	case "model":
		return runModel(rest)
	case "scene":
		return runScene(rest)
	case "serve":
		return runServe(rest)
	case "demo":
		return runDemo(rest)
	case "sim":
		return runSim(rest)
	case "version":
		fmt.Println(version())
		return nil
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func runModel(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: model needs a subcommand: build, fetch, info, run or bench", errUsage)
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "build":
		return runModelBuild(rest)
	case "fetch":
		return runModelFetch(rest)
	case "info":
		return runModelInfo(rest)
	case "run":
		return runModelRun(rest)
	case "bench":
		return runModelBench(rest)
	default:
		return fmt.Errorf("%w: unknown model subcommand %q", errUsage, sub)
	}
}

// parse parses flags that may come before, between or after positional
// arguments, as users type them.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(os.Stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func version() string {
	return "actiond " + strings.TrimSpace(buildVersion)
}

var buildVersion = "dev"
