"""`make run`'s process manager: honcho, with a stop grace the worker's warm shutdown fits in.

`python -m portal.procfile start` is `honcho start`. On Ctrl-C honcho sends SIGTERM to each
process's group, and SIGKILLs whatever is still running KILL_WAIT seconds after the first
one stopped: 5 s in honcho 2.0, with no option to change it. The web server and beat stop
at once; the worker finishes its running tasks (a provider request takes up to
PROVIDER_DEADLINE, 20 s by default) and closes its pool, which alone takes five to seven
seconds on the filesystem broker. So the worker was SIGKILLed on every stop, and the tasks
it held went with it. STOP_GRACE_SECONDS bounds the stop instead: SIGKILL stays the last
resort for a worker that does not stop by then.
"""

import honcho.manager
from honcho.command import main

STOP_GRACE_SECONDS = 30

if __name__ == "__main__":
    if not hasattr(honcho.manager, "KILL_WAIT"):
        raise SystemExit("portal.procfile: honcho.manager.KILL_WAIT is gone; see its docstring")
    honcho.manager.KILL_WAIT = STOP_GRACE_SECONDS
    main()
