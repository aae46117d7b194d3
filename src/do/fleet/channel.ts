// Live channel to agents: hibernatable WebSockets tagged with the worker id, so an assignment reaches a
// waiting agent in milliseconds while idle connections cost nothing. The heartbeat stays authoritative.
export class WorkerChannel {
  constructor(private ctx: DurableObjectState) {
    // Keep-alives are answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  accept(workerId: string): Response {
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    // One live channel per worker: a reconnecting agent replaces its old socket.
    for (const old of this.ctx.getWebSockets(workerId)) old.close(1000, "replaced by a newer connection");
    this.ctx.acceptWebSocket(server, [workerId]);
    server.send(JSON.stringify({ type: "hello", workerId }));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** True when at least one open socket took the message. */
  send(workerId: string, msg: unknown): boolean {
    let sent = false;
    const data = JSON.stringify(msg);
    for (const ws of this.ctx.getWebSockets(workerId)) {
      try {
        ws.send(data);
        sent = true;
      } catch {
        // closed under us; the heartbeat will deliver instead
      }
    }
    return sent;
  }
}
