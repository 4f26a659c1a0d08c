#define VALUE 7
int util(void);
