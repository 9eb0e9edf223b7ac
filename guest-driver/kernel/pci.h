/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * PCI configuration mechanism #1 (ports 0xCF8/0xCFC) and the bus-0 scan.
 */
#ifndef DMALAB_PCI_H
#define DMALAB_PCI_H

#include <stdint.h>

#define PCI_MAX_FUNCTIONS 64

struct pci_function {
	uint8_t bus, dev, fn;
	uint8_t header_type;
	uint16_t vendor, device;
	uint32_t class_rev; /* class code << 8 | revision */
};

uint32_t pci_conf_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg);
void pci_conf_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg,
		      uint32_t v);

/* Scan bus 0 (32 devices, functions 1-7 of multifunction devices) and
 * record what is found. Returns the number of functions. */
unsigned int pci_scan(void);
/* One `pci BB:DD.F VVVV:DDDD class CCCCCC` line per function found. */
void pci_print(void);

extern struct pci_function pci_functions[PCI_MAX_FUNCTIONS];
extern unsigned int pci_function_count;

#endif
