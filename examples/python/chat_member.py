"""A chat member that records every group message it receives: joins a room (or one topic of
it), publishes to it, and answers with what arrived, so a test can check that each publish
arrived once and in order per publisher."""

from plexspaces import actor, handler, host, state


@actor
class ChatMember:
    received: list = state(default_factory=list)

    @handler("join")
    def join(self, room_name: str, topic: str | None = None) -> dict:
        joined = host.process_groups.join(room_name, host.get_actor_id(), topic)
        return {"joined": joined, "room": room_name, "topic": topic}

    @handler("leave")
    def leave(self, room_name: str, topic: str | None = None) -> dict:
        return {"left": host.process_groups.leave(room_name, None, topic)}

    @handler("say")
    def say(self, room_name: str, text: str, seq: int = 0, topic: str | None = None) -> dict:
        sent = host.process_groups.publish(room_name, {"text": text, "seq": seq}, topic)
        return {"sent_to": sent}

    @handler("pg_message")
    def on_group_message(self, group: str, data: dict, publisher: str, topic: str | None = None) -> None:
        self.received.append({"group": group, "topic": topic, "publisher": publisher, "data": data})

    @handler("received")
    def get_received(self) -> dict:
        return {"received": self.received, "count": len(self.received)}
