package ingest

// FrameEncoder turns one preprocessed frame into what a window keeps for
// it: the output of the model's per-frame front (see models.FeatureCache),
// so that each kept frame goes through the front once, however many
// windows it is part of, and the windows carry features instead of pixels.
// The server implements it over the engine, which ingest must not import.
//
// The stream's goroutine calls Encode, once per kept frame (about one per
// slot); an encoder shared by streams must be safe for concurrent use.
type FrameEncoder interface {
	// FeatureSize is the number of float32 values Encode writes per frame.
	FeatureSize() int
	// Encode computes the features of frame, one preprocessed frame [3,
	// crop, crop] (Preprocessor.Frame), into dst, which holds exactly
	// FeatureSize values.
	Encode(frame, dst []float32) error
}

// SetEncoder makes the stream keep enc's features of each kept frame in
// place of its pixels: its windows' Tensor is then [segments,
// enc.FeatureSize()]. It must be called before Start; nil (the default)
// keeps pixels.
func (s *Stream) SetEncoder(enc FrameEncoder) { s.set.grid.enc = enc }
