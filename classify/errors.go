package classify

import "errors"

// ErrUnreadableClip: a clip that cannot be opened or decoded.
var ErrUnreadableClip = errors.New("clip cannot be decoded")

// clipError marks an error of reading or decoding a clip (ErrUnreadableClip)
// and keeps its message as it is, so that the CLI prints what it always did.
type clipError struct{ err error }

func (e *clipError) Error() string        { return e.err.Error() }
func (e *clipError) Unwrap() error        { return e.err }
func (e *clipError) Is(target error) bool { return target == ErrUnreadableClip }
