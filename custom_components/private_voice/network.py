"""Network checks shared by the config flow and setup."""

import asyncio


async def async_check_port_free(host: str, port: int) -> None:
    """Bind host:port and release it at once; raise OSError if it is taken.

    asyncio sets SO_REUSEADDR, so a port left in TIME_WAIT counts as free while
    one that another program listens on does not.
    """
    server = await asyncio.get_running_loop().create_server(
        asyncio.Protocol, host, port
    )
    server.close()
    await server.wait_closed()
