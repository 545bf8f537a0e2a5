"""A non-JavaScript STOMP client against /ws/chat: stomp.py over WebSocket.

Connects with the token as passcode, subscribes to the room with a receipt, sends one message
with a receipt, waits for it to come back, disconnects with a receipt, and prints what it saw as
one JSON line for the test to check.
"""
import json
import sys
import threading

import stomp

port, token, room_id, text = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Recorder(stomp.ConnectionListener):
    def __init__(self):
        self.receipts = []
        self.messages = []
        self.errors = []
        self.changed = threading.Condition()

    def on_receipt(self, frame):
        with self.changed:
            self.receipts.append(frame.headers["receipt-id"])
            self.changed.notify_all()

    def on_message(self, frame):
        with self.changed:
            self.messages.append({"headers": frame.headers, "body": frame.body})
            self.changed.notify_all()

    def on_error(self, frame):
        with self.changed:
            self.errors.append(frame.headers.get("message"))
            self.changed.notify_all()

    def wait(self, done):
        with self.changed:
            if not self.changed.wait_for(lambda: done() or self.errors, timeout=10):
                raise TimeoutError("nothing came in 10 s")
            if self.errors:
                raise RuntimeError(f"ERROR from the server: {self.errors}")


recorder = Recorder()
connection = stomp.WSStompConnection([("127.0.0.1", port)], ws_path="/ws/chat", timeout=10)
connection.set_listener("recorder", recorder)
connection.connect(passcode=token, wait=True)

connection.subscribe(f"/sub/rooms/{room_id}", id="room", ack="auto", headers={"receipt": "subscribed"})
recorder.wait(lambda: "subscribed" in recorder.receipts)
connection.send(f"/pub/rooms/{room_id}", text, content_type="text/plain", headers={"receipt": "sent"})
recorder.wait(lambda: "sent" in recorder.receipts and recorder.messages)
connection.disconnect(receipt="bye")

print(json.dumps({"message": recorder.messages[0], "receipts": recorder.receipts}))
