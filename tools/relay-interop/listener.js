#!/usr/bin/env node
// A hyco-ws (Microsoft's Node client) listener: answers every message with
// {"status":"processed","message_id"} as a gateway does. Usage: node listener.js LISTEN_URL TOKEN
'use strict';
const WebSocket = require('hyco-ws');

const [listenUrl, token] = process.argv.slice(2);
const server = WebSocket.createRelayedServer({ server: listenUrl, token }, (socket) => {
  socket.on('message', (data) => {
    const message = JSON.parse(data);
    socket.send(JSON.stringify({ status: 'processed', message_id: message.message_id, reason: 'answered by hyco-ws' }));
  });
});
server.on('listening', () => console.log('listening'));
server.on('error', (error) => {
  console.error(`listener error: ${error && (error.message || error.type || error)}`);
  process.exit(1);
});
