/* Must not compile: sprintf is banned by reconciler/banned.h. */
#include "reconciler/base/common.h"

int main(void)
{
	char a[8];

	sprintf(a, "%d", 1);
	return a[0];
}
