"""Join a class poll: the page a student's phone opens from the projector's QR code (/Join?room=CODE).

The room's question, one box for a guess, and the student's own guess; no model is loaded here, and the
teacher's controls and secret never reach this page (explainer/poll.py, ui.student_room)."""

from __future__ import annotations

import streamlit as st

from explainer import poll, ui

ui.student_page("Class poll")
raw = ui.link_value("room")
if not raw:
    st.write("Type the room code your teacher's screen shows.")
    ui.join_room_box()
    st.stop()
try:
    code = poll.clean_code(raw)
except poll.PollError as e:
    st.error(str(e))
    ui.join_room_box()
    st.stop()
ui.student_room(code)
