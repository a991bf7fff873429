"""Stream-key rotation, the room detail's video/ingest objects, and publishers dropped."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from liveshop.models import User
from rooms import services as room_services
from rooms.models import Room
from streams import services
from streams.models import StreamSession
from streams.selectors import stream_public_name
from tests.conftest import ClientFor

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("persona_name", "code"),
    [("anonymous", 401), ("viewer", 403), ("other_host", 403), ("moderator", 403), ("staff", 403), ("host", 200)],
)
def test_stream_key_rotation_authorization(
    room: Room, persona: Any, client_for: ClientFor, persona_name: str, code: int
) -> None:
    old = room.stream_key
    answer = client_for(persona(persona_name)).post(f"/api/v1/rooms/{room.pk}/stream-key/")

    assert answer.status_code == code
    room.refresh_from_db()
    if code == 200:
        assert answer.json() == {"stream_key": room.stream_key, "ingest_url": "rtmp://127.0.0.1:1935/live"}
        assert room.stream_key != old
    else:
        assert room.stream_key == old


def test_stream_key_of_missing_room_is_404(host: User, client_for: ClientFor) -> None:
    assert client_for(host).post("/api/v1/rooms/999999/stream-key/").status_code == 404


def test_room_detail_video_and_ingest(room: Room, host: User, viewer: User, client_for: ClientFor) -> None:
    name = stream_public_name(room_id=room.pk)
    seen = client_for(viewer).get(f"/api/v1/rooms/{room.pk}/").json()
    assert seen["video"] == {
        "source": "ingest",
        "state": "off_air",
        "playback_url": f"http://127.0.0.1:8080/hls/{name}.m3u8",
        "on_air_since": None,
    }
    assert "ingest" not in seen
    assert "stream_key" not in seen

    services.stream_publish_start(key=room.stream_key, ingest_node="n", client_addr="a", client_id="1")
    seen = client_for(host).get(f"/api/v1/rooms/{room.pk}/").json()
    assert seen["video"]["state"] == "on_air"
    assert seen["video"]["on_air_since"] is not None
    assert seen["ingest"] == {"url": "rtmp://127.0.0.1:1935/live", "stream_key": room.stream_key}


def test_without_hls_the_typed_playback_url_stays(
    room: Room, viewer: User, client_for: ClientFor, settings: Any
) -> None:
    settings.HLS_PUBLIC_URL = ""
    Room.objects.filter(pk=room.pk).update(playback_url="https://cdn.example/show.m3u8")
    video = client_for(viewer).get(f"/api/v1/rooms/{room.pk}/").json()["video"]
    assert video["playback_url"] == "https://cdn.example/show.m3u8"
    assert video["source"] == "external"


@pytest.fixture
def control(settings: Any) -> Iterator[list[str]]:
    """A stand-in for nginx-rtmp's control endpoint that records the drops asked of it."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"1")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.RTMP_CONTROL_URL = f"http://127.0.0.1:{server.server_address[1]}/control"
    yield asked
    server.shutdown()


def _live_session(room: Room) -> StreamSession:
    return services.stream_publish_start(key=room.stream_key, ingest_node="n", client_addr="a", client_id="1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("close", "reason"),
    [
        (lambda room: room_services.room_end(room=room), "dropped_ended"),
        (lambda room: room_services.room_suspend(room=room, reason="spam"), "dropped_suspended"),
        (lambda room: services.stream_key_rotate(room=room), "key_rotated"),
    ],
)
def test_closing_drops_the_publisher(
    room: Room, control: list[str], events: list[Any], close: Any, reason: str
) -> None:
    session = _live_session(room)

    close(room)

    session.refresh_from_db()
    assert session.end_reason == reason
    assert control == [f"/control/drop/publisher?app=live&name={stream_public_name(room_id=room.pk)}"]
    assert "video.off_air" in [kind for _, kind, _ in events]


@pytest.mark.django_db(transaction=True)
def test_closing_an_off_air_room_drops_nothing(room: Room, control: list[str], events: list[Any]) -> None:
    room_services.room_end(room=room)
    assert control == []
    assert "video.off_air" not in [kind for _, kind, _ in events]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_control_endpoint_is_logged_not_raised(room: Room, settings: Any) -> None:
    from tests.servers import free_port

    settings.RTMP_CONTROL_URL = f"http://127.0.0.1:{free_port()}/control"
    _live_session(room)
    room_services.room_end(room=room)
    room.refresh_from_db()
    assert room.status == Room.Status.ENDED
