// The types of version 2: what a transformer file includes for the new layouts.
#ifndef DATA_V2_TYPES_H
#define DATA_V2_TYPES_H

enum color { BLACK, RED, GREEN, BLUE };  // renumbered: mapped by name

struct point {
  int x, y;
};

struct node {  // 56 bytes: gains weight, loses junk, reorders, retypes count and score, widens level
  struct node* next;
  long weight;
  char name[16];
  long long count;
  enum color color;
  unsigned level : 7;
  unsigned flags : 3;
  float score;
  int spare;
};

struct tree {
  struct tree *left, *right;
  int height;
  long long key;
  struct point where;
};

struct holder {
  int tag;
  struct point p;
  struct node inner;  // embedded: it changes with struct node
};

struct stats {
  unsigned long hits;
  double ratio;
  int misses;
};

#endif
