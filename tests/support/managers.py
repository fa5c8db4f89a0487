"""A second manager for hall files in tests: confirming a case found not valid takes two."""

from __future__ import annotations

# The demo manager's hash (password "hall-demo"), so the deputy logs in with the demo password.
MANAGER_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$WtqKEduh5vdaTZ+nXG9ytw"
    "$r1LxjCDyd0UlXuDEB2S094gheboIx+5by+pFMHIeMC4"
)
DEPUTY = f"""
[[staff]]
username = "deputy"
name = "刘副主任"
staff_no = "1009"
role = "manager"
password_hash = "{MANAGER_HASH}"
"""
