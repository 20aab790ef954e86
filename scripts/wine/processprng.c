/*
 * bcryptprimitives.dll for Wine < 8.13 (Debian 12 ships 8.0), which lacks
 * it: Go >= 1.24 programs take their random bytes from ProcessPrng and die at
 * start-up without it. ProcessPrng on top of RtlGenRandom (advapi32's
 * SystemFunction036). Test set-up only (scripts/wine-setup): never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
