/* Must not compile: strcpy is banned by reconciler/banned.h. */
#include "reconciler/base/common.h"

int main(void)
{
	char a[4];

	strcpy(a, "abc");
	return a[0];
}
