"""Groupware objects in the archive (Kolab 3): the parser (kolab.py), user-relative folder names
(mailboxes.py), an object's revisions and a message's changelog (changelog.py), property diffs
(diff.py) and free/busy (freebusy.py). Engines only: the HTTP side is vault/web/."""
