// Package camsim is a simulated camera: an RTSP server (gortsplib) that
// serves video files and synthetic scenes (Scene: a bright disk moving
// one way over a textured background; SceneSequence: several such legs),
// live, looped, with the faults a real camera has on demand (dropped
// connections, stalls, timestamp jumps, packet loss, Motion JPEG,
// credentials), and the H.264 encoder and file writer (libx264 through
// libav, in h264_writer.go, the package's only file that imports "C") with
// which the simulator and the scenes make video. Tests, the demo, the
// benchmark and the soak use it.
//
// It must not be used by the live path itself (ingest, server): it is a
// peer of the cameras, not part of the server.
package camsim
