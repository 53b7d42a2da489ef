// Package client is the Go client library of the actiond gRPC API
// (actiond.v1 StreamService and RecognitionService, grpc.health.v1):
// Dial a server, manage its streams, subscribe to its events, classify
// clips. actionctl is built on it.
//
//	c, err := client.Dial(ctx, "127.0.0.1:50051", client.WithToken(token))
//	if err != nil { ... }
//	defer c.Close()
//	for ev, err := range c.Subscribe(ctx, &actiondv1.SubscribeRequest{Streams: []string{"dock-3"}}) {
//		if err != nil { ... } // permanent: Unauthenticated, InvalidArgument, ...
//		fmt.Println(ev.GetStream(), ev.GetActionStarted().GetLabel())
//	}
//
// Errors of calls are *Error: they keep the server's status (status.Code
// and status.FromError see it, errors.Is matches ErrNotFound and the other
// code sentinels) and say what the client was doing.
//
// It imports only the API (proto) and grpc/protobuf: never the server.
package client
