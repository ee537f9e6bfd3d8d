"""The Redis store's delivery queue (:mod:`guard.world.deliveries`), shared by every
replica on the Redis.

Keys (``P`` is the store's prefix; one hash tag, so a Redis Cluster keeps them in one
slot and each script below touches one slot)::

    P{deliveries}:due    zset  job id -> when it is due (a claimed job: its lease's end)
    P{deliveries}:job    hash  job id -> the job (JSON)
    P{deliveries}:claim  hash  job id -> the token of the claim that holds it

Every script names its keys in ``KEYS`` (none is computed inside the script).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from guard.world.deliveries import Claim, Delivery, DeliveryQueue

RunKeys = Callable[..., Any]  # (script source, keys, *args) -> reply, as RedisStore._run_keys
Call = Callable[[Callable[[Any], Any]], Any]  # fn(client) -> reply, as RedisStore._call

TAG = "{deliveries}"

ADD = r"""
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  end
end
return 1
"""

CLAIM = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i, id in ipairs(ids) do
  local body = redis.call('HGET', KEYS[2], id)
  if body then
    local token = ARGV[4] .. ':' .. i
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    redis.call('HSET', KEYS[3], id, token)
    table.insert(out, body)
    table.insert(out, token)
  else
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[3], id)
  end
end
return out
"""

FINISH = r"""
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

RETRY = r"""
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


def _score(t: float) -> str:
    return repr(float(t))  # every digit: Lua would print a float with 14


class RedisQueue(DeliveryQueue):
    def __init__(self, prefix: str, run_keys: RunKeys, call: Call) -> None:
        super().__init__()
        self._run_keys, self._call = run_keys, call
        p = prefix + TAG
        self.keys = [p + ":due", p + ":job", p + ":claim"]

    def _script(self, source: str, *args: Any) -> Any:
        return self._run_keys(source, self.keys, *args)

    def _add(self, jobs: Sequence[Delivery], due: float) -> None:
        args: list[str] = [_score(due)]
        for job in jobs:
            args += [job.id, job.dumps()]
        self._script(ADD, *args)

    def claim(self, now: float, lease: float, limit: int) -> list[Claim]:
        reply = self._script(CLAIM, _score(now), _score(now + lease), int(limit), self.token())
        return [(Delivery.loads(reply[i]), reply[i + 1]) for i in range(0, len(reply), 2)]

    def finish(self, job: Delivery, token: str) -> bool:
        return bool(int(self._script(FINISH, job.id, token)))

    def retry(self, job: Delivery, token: str, due: float) -> bool:
        return bool(int(self._script(RETRY, job.id, token, _score(due), job.dumps())))

    def pending(self) -> list[tuple[Delivery, float]]:
        due, jobs = self.keys[0], self.keys[1]
        scored, bodies = self._call(lambda r: (
            r.zrange(due, 0, -1, withscores=True), r.hgetall(jobs)))
        return [(Delivery.loads(bodies[i]), float(s)) for i, s in scored if i in bodies]
