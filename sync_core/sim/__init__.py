"""eBay sandbox simulator: one ASGI app answering the Fulfillment, Finances, Message, Inventory, Feed,
Developer Analytics and OAuth endpoints baysync uses, with deterministic seeded data, an injectable
clock and seeded fault injection.  See docs/simulator.md.

    from sync_core.sim import SimConfig, SellerSpec, Faults, Simulator
    sim = Simulator(SimConfig(seed=7, sellers=[SellerSpec("alice", orders=500)]))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim")
"""

from .config import Faults, SellerSpec, SimConfig
from .core import Simulator
from .faults import SimConnectionReset

__all__ = ["Faults", "SellerSpec", "SimConfig", "SimConnectionReset", "Simulator"]
