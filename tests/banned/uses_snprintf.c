/* Must compile: the control for the banned-call tests. */
#include "reconciler/base/common.h"

int main(void)
{
	char a[8];

	snprintf(a, sizeof(a), "%d", 1);
	return a[0] == '1' ? 0 : 1;
}
