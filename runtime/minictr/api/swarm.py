"""/swarm, /nodes, /services, /tasks, /secrets, /configs: answered as a Docker engine that is not in
a swarm answers them (moby's daemon/cluster), which clients' clean-up paths expect: docker-py's
leave_swarm(force=True) takes the 503 of /swarm/leave for "nothing to leave". Joining or making a
swarm (/swarm/init, /swarm/join) is refused as unsupported (api/router.py)."""

from minictr.api.router import route
from minictr.errors import Unavailable

# moby's errNoSwarm: /swarm/leave of a node that never joined one.
NOT_IN_A_SWARM = "This node is not part of a swarm"
# moby's errNoManager for a node with no swarm: every question to the swarm's managers.
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                 'this node to swarm and try again.')

_MANAGER_ROUTES = [
    ("GET", "/swarm"), ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("DELETE", "/nodes/{id}"), ("POST", "/nodes/{id}/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"), ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"), ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{id}"), ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"), ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
]


@route("POST", "/swarm/leave")
async def leave_swarm(req):
    raise Unavailable(NOT_IN_A_SWARM)


async def ask_a_manager(req):
    raise Unavailable(NOT_A_MANAGER)


for _method, _path in _MANAGER_ROUTES:
    route(_method, _path)(ask_a_manager)


def swarm_info():
    """info's Swarm of an engine in no swarm, as Docker's (swarm.Info)."""
    return {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
            "RemoteManagers": None}
