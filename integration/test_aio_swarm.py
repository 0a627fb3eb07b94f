"""The asyncio face on the two-node swarm: one service started, asked, waited on (cancelled)
and stopped through AsyncSessionManager."""

from __future__ import annotations

import asyncio

import pytest

from kstlib.ops.aio import AsyncSessionManager

from .swarm_support import RUN, RUN_LABEL, Swarm, swarm_name


def test_a_service_through_the_async_face(swarm: Swarm) -> None:
    name = swarm_name("aio")

    async def main() -> None:
        bot = AsyncSessionManager(
            name,
            backend="swarm",
            base_url=swarm.env["KSTLIB_TEST_SWARM_MANAGER"],
            image=swarm.image,
            labels={RUN_LABEL: RUN},
            stop_timeout=2,
        )
        try:
            await bot.start(["sh", "-c", "echo swarm-ready; sleep 300"])
            assert (await bot.wait_until_running(timeout=60)).is_running
            assert await bot.wait_for_log("swarm-ready", timeout=60) == "swarm-ready"
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await bot.wait()
            assert await bot.is_running()
        finally:
            assert await bot.stop(graceful=False)
        assert not await bot.exists()

    asyncio.run(main())
