"""A client for a Hermes-shaped price service (Pyth's `/v2/updates/price/...` endpoints, the
subset a keeper needs), on httpx. On local chains `lever price serve` answers it; on a live
network, Pyth's Hermes does."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from lever.errors import LeverError


class PriceServiceError(LeverError):
    """The price service could not be reached or did not answer as Hermes does."""


@dataclass(frozen=True)
class Update:
    """One feed's update: the blob for the contracts, and what it says."""

    price_id: bytes
    blob: bytes
    price: int
    conf: int
    expo: int
    publish_time: int


class HermesClient:
    def __init__(self, base_url: str, timeout: float = 5.0, client: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.http = client or httpx.Client(timeout=timeout)

    def latest(self, price_ids: list[bytes]) -> dict[bytes, Update]:
        """Each feed's latest update."""
        return self._get("/v2/updates/price/latest", price_ids)

    def at_or_after(self, publish_time: int, price_ids: list[bytes]) -> dict[bytes, Update]:
        """Each feed's earliest update published at or after `publish_time` (feeds with none yet
        are missing from the answer)."""
        return self._get(f"/v2/updates/price/{publish_time}", price_ids)

    def _get(self, path: str, price_ids: list[bytes]) -> dict[bytes, Update]:
        params: list[tuple[str, str | int | float | bool | None]] = [("ids[]", "0x" + pid.hex()) for pid in price_ids]
        params += [("encoding", "hex"), ("parsed", "true")]
        try:
            response = self.http.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            raise PriceServiceError(f"price service {self.base_url}: {exc}") from None
        if response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise PriceServiceError(f"price service {self.base_url}{path}: HTTP {response.status_code}")
        body = response.json()
        out = {}
        for blob, parsed in zip(body["binary"]["data"], body["parsed"], strict=True):
            price = parsed["price"]
            pid = bytes.fromhex(parsed["id"].removeprefix("0x"))
            out[pid] = Update(
                pid,
                bytes.fromhex(blob.removeprefix("0x")),
                int(price["price"]),
                int(price["conf"]),
                int(price["expo"]),
                int(price["publish_time"]),
            )
        return out

    def close(self) -> None:
        self.http.close()
