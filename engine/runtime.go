package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// RuntimeVersion is the ONNX Runtime release that onnxruntime_go v1.35.0 is
// built against. Any other version is refused: the C API table differs.
const RuntimeVersion = "1.29.0"

// LibraryEnv names the environment variable that points at the library.
const LibraryEnv = "ACTIOND_ORT_LIB"

// CacheDir is where `make setup` puts the library, relative to the checkout.
var CacheDir = filepath.Join(".cache", "onnxruntime-"+RuntimeVersion)

// ErrRuntime is returned (wrapped) whenever the ONNX Runtime library cannot
// be found or loaded; callers test for it with errors.Is.
var ErrRuntime = errors.New("onnx runtime unavailable")

const fixHint = "run `make setup` in the actiond checkout, or set " + LibraryEnv +
	" to a libonnxruntime.so of version " + RuntimeVersion

// systemLibraries are where a system-wide install of the pinned version lives.
var systemLibraries = []string{
	"/usr/local/lib/libonnxruntime.so." + RuntimeVersion,
	"/usr/lib/x86_64-linux-gnu/libonnxruntime.so." + RuntimeVersion,
	"/usr/lib/libonnxruntime.so." + RuntimeVersion,
}

// FindLibrary returns the path of the ONNX Runtime library to load: the
// ACTIOND_ORT_LIB setting if given; else the copy `make setup` cached in the
// checkout that holds the executable or the working directory; else a system
// copy of the pinned version.
func FindLibrary() (string, error) {
	if p := os.Getenv(LibraryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%q: %v; %s", ErrRuntime, LibraryEnv, p, err, fixHint)
		}
		return p, nil
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for range 12 {
			p := filepath.Join(dir, CacheDir, "libonnxruntime.so.1")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	for _, p := range systemLibraries {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: libonnxruntime %s not found (looked for %s, %s in the checkout, and %v); %s",
		ErrRuntime, RuntimeVersion, LibraryEnv, CacheDir, systemLibraries, fixHint)
}

var (
	initMu   sync.Mutex
	initPath string
	initErr  error
	initDone bool
)

// Init loads the ONNX Runtime library once per process. libPath "" means
// FindLibrary. Later calls return the first call's result.
func Init(libPath string) error {
	initMu.Lock()
	defer initMu.Unlock()
	if initDone {
		return initErr
	}
	initDone = true
	initErr = load(libPath)
	return initErr
}

// LibraryPath returns the path Init loaded, or "" before a successful Init.
func LibraryPath() string {
	initMu.Lock()
	defer initMu.Unlock()
	if initErr != nil {
		return ""
	}
	return initPath
}

func load(libPath string) error {
	if libPath == "" {
		p, err := FindLibrary()
		if err != nil {
			return err
		}
		libPath = p
	}
	ort.SetSharedLibraryPath(libPath)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("%w: load %q: %v; actiond needs ONNX Runtime %s: %s",
			ErrRuntime, libPath, err, RuntimeVersion, fixHint)
	}
	if v := ort.GetVersion(); v != RuntimeVersion {
		_ = ort.DestroyEnvironment()
		return fmt.Errorf("%w: %q is ONNX Runtime %s, actiond needs %s: %s",
			ErrRuntime, libPath, v, RuntimeVersion, fixHint)
	}
	initPath = libPath
	return nil
}
