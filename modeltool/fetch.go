package modeltool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/actiond/actiond/classify"
)

// PPTSMv2WeightsURL is where PaddleVideo publishes the 75.16% PP-TSMv2
// checkpoint (spec §2.1). ACTIOND_PPTSMV2_URL overrides it (mirrors, tests).
const PPTSMv2WeightsURL = "https://videotag.bj.bcebos.com/PaddleVideo-release2.3/PPTSMv2_k400_16f_dml.pdparams"

// WeightsURLEnv names the environment variable that overrides the address.
const WeightsURLEnv = "ACTIOND_PPTSMV2_URL"

// DefaultWeightsDir is where fetched checkpoints are kept:
// $XDG_DATA_HOME/actiond/weights.
func DefaultWeightsDir() string {
	return filepath.Join(filepath.Dir(filepath.Dir(classify.DefaultModelPath())), "weights")
}

// Download fetches url into dst (atomically: a partial download never
// replaces dst). connectTimeout bounds how long an unreachable host may take
// to fail; the transfer itself is bounded by ctx. progress, if not nil, is
// called with bytes done and the total (-1 when unknown).
func Download(ctx context.Context, url, dst string, connectTimeout time.Duration, progress func(done, total int64)) error {
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connectTimeout}).DialContext,
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: 2 * connectTimeout,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w (is this machine on the internet? see README \"Using the real PP-TSMv2 weights\" to fetch the file by hand)", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: server answered %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".part-*")
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	defer os.Remove(tmp.Name())
	w := &countingWriter{w: tmp, total: resp.ContentLength, progress: progress}
	if _, err := io.Copy(w, resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("download %s: after %d bytes: %w", url, w.done, err)
	}
	if resp.ContentLength >= 0 && w.done != resp.ContentLength {
		tmp.Close()
		return fmt.Errorf("download %s: got %d of %d bytes", url, w.done, resp.ContentLength)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

type countingWriter struct {
	w        io.Writer
	done     int64
	total    int64
	progress func(done, total int64)
	last     time.Time
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.done += int64(n)
	if c.progress != nil && (time.Since(c.last) > 200*time.Millisecond || c.done == c.total) {
		c.last = time.Now()
		c.progress(c.done, c.total)
	}
	return n, err
}
