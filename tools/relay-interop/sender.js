#!/usr/bin/env node
// A hyco-ws (Microsoft's Node client) sender: sends one message over a rendezvous and prints the
// reply. Usage: node sender.js CONNECT_URL TOKEN MESSAGE_JSON
'use strict';
const WebSocket = require('hyco-ws');

const [connectUrl, token, message] = process.argv.slice(2);
setTimeout(() => {
  console.error('no reply within 10 s');
  process.exit(2);
}, 10000);
const socket = WebSocket.relayedConnect(connectUrl, token, (open) => {
  open.on('message', (reply) => {
    console.log(reply.toString());
    open.close();
    process.exit(0);
  });
  open.send(message);
});
socket.on('error', (error) => {
  console.error(`sender error: ${error && (error.message || error)}`);
  process.exit(1);
});
